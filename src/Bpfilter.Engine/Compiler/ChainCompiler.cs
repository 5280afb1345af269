using Bpfilter.Engine.Compiler.Matchers;
using Bpfilter.Engine.Compiler.Optimizer;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Compiler;

/// <summary>
/// Lowers one hooked chain into one program: parse the headers once into the packet record, then each rule as a run
/// of tests that fall through to the next rule on the first failure, then the policy. A rule that matches counts the
/// packet in its slot; accept and drop then end in one epilogue that returns the verdict; continue goes on; a jump
/// runs the user chain's rules inline and comes back after the jumping rule; a goto runs them and comes back where
/// the chain it left would have returned; return goes back (at the hooked chain: to the policy).
/// </summary>
public static class ChainCompiler
{
    /// <summary>
    /// The maps the optimizer's tables may take in one program: the kernel allows 64 (MAX_USED_MAPS), and counters,
    /// sets, limits and the log need the rest.
    /// </summary>
    private const int ClassifierMapBudget = 48;

    /// <summary>The most instructions the kernel loads in one program (BPF_COMPLEXITY_LIMIT_INSNS).</summary>
    public const int MaxInstructions = 1_000_000;

    /// <summary>Compiles a chain that jumps nowhere and names no set, as listings and the interpreter do (<see cref="CompileOptions.Simulation"/>).</summary>
    public static CompiledChain Compile(Chain chain) =>
        Compile(new Ruleset("chain", [chain]), chain, CompileOptions.Simulation);

    public static CompiledChain Compile(Ruleset ruleset, Chain chain, CompileOptions options)
    {
        var hook = HookFlavour.For(chain.Hook);
        var userChains = ruleset.Reachable(chain.Rules);
        var layout = new CounterLayout(chain.Rules.Count, userChains.Select(u => (u.Name, u.Rules.Count)));
        // Offloaded programs run on the NIC, which has no per-CPU maps: one shared array, added to atomically.
        bool shared = chain.Mode == XdpMode.Offload;
        var counters = new MapSpec(KernelName("c_", chain.Name), shared ? MapType.Array : MapType.PerCpuArray, 4, CounterLayout.ValueSize, (uint)layout.SlotCount);
        var emitter = new RuleEmitter(ruleset, chain, hook, layout, counters, shared, options);
        var program = emitter.Emit();
        if (program.Instructions.Count > MaxInstructions)
            throw new BpfilterException("ProgramTooLarge", FailureCategory.InvalidData,
                $"chain '{chain.Name}' compiles to {program.Instructions.Count} instructions, more than the {MaxInstructions} the kernel loads"
                + (userChains.Count > 0 ? " (every jump copies the user chain it jumps to)" : ""));
        return new CompiledChain(chain, program, counters, layout, ruleset, emitter.Tables.Where(t => program.Maps.Contains(t.Map)).ToList());
    }

    /// <summary>Kernel object names: 15 characters of [A-Za-z0-9_.] at most.</summary>
    internal static string KernelName(string prefix, string name)
    {
        var clean = new string(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' ? c : '_').ToArray());
        var full = prefix + clean;
        return full.Length <= 15 ? full : full[..15];
    }

    private sealed class RuleEmitter(Ruleset ruleset, Chain chain, HookFlavour hook, CounterLayout layout, MapSpec counters, bool shared, CompileOptions options)
    {
        private readonly Assembler _asm = new();
        private readonly Dictionary<string, Dictionary<int, ClassifierSegment>> _segments = new(StringComparer.Ordinal);
        private int _tableCount;
        private Label _count = null!;

        /// <summary>The maps the optimizer filled for the classified runs.</summary>
        public List<LookupTable> Tables { get; } = new();

        public EbpfProgram Emit()
        {
            var asm = _asm;
            var notIp = asm.NewLabel("not_ip");
            var malformed = asm.NewLabel("malformed");
            var rules = asm.NewLabel("rules");
            var policy = asm.NewLabel("policy");
            _count = asm.NewLabel("count");

            asm.BeginRegion("prologue");
            PacketRecord.EmitClear(asm);
            bool conntrack = ConntrackMatcher.Uses(ruleset, chain);
            if (conntrack) ConntrackMatcher.SaveContext(asm);
            hook.EmitPrologue(asm, malformed);
            HeaderParser.Emit(asm, hook, notIp, malformed);
            if (conntrack) ConntrackMatcher.EmitState(asm, hook, chain);
            asm.Jump(rules);

            // The parser's exits sit right after it, within reach of its 16-bit conditional jumps however long the chain.
            asm.BeginRegion("not ip");
            asm.Mark(notIp);
            Decide(layout.NotIpSlot, VerdictKind.Accept);
            asm.BeginRegion("malformed");
            asm.Mark(malformed);
            Decide(layout.MalformedSlot, VerdictKind.Drop);

            asm.Mark(rules);
            EmitRules(chain.Name, chain.Rules, i => i, returnTo: policy, isHooked: true);

            asm.BeginRegion("policy");
            asm.Mark(policy);
            Decide(layout.PolicySlot, chain.Policy.Kind);

            asm.BeginRegion("epilogue");
            asm.Mark(_count);
            asm.Store(Size.Word, Register.R10, PacketRecord.CounterKey, Register.R9);
            EmitCount(afterCount: null);
            asm.Mov(Register.R0, Register.R6);
            asm.Exit();
            return asm.Assemble(KernelName("bf_", chain.Name), hook.ProgramType, hook.ExpectedAttachType);
        }

        /// <summary>Emits <paramref name="rules"/>; a return, and the end of the list, go to <paramref name="returnTo"/>.</summary>
        private void EmitRules(string chainName, IReadOnlyList<Rule> rules, Func<int, int> slotOf, Label returnTo, bool isHooked)
        {
            var asm = _asm;
            var segments = Segments(chainName, rules);
            for (int i = 0; i < rules.Count; i++)
            {
                if (segments.TryGetValue(i, out var segment))
                {
                    var classified = $"rules {segment.Start + 1}-{segment.End} classified ({segment.Groups.Count} group(s))";
                    asm.BeginRegion(isHooked ? classified : $"chain {chainName} {classified}");
                    var after = asm.NewLabel($"{chainName}_rules_{segment.Start + 1}_{segment.End}_next");
                    ClassifierEmitter.Emit(asm, segment, slotOf(segment.Start), hook.ReturnCode, _count, after);
                    asm.Mark(after);
                    i = segment.End - 1;
                    continue;
                }
                var rule = rules[i];
                var where = $"rule {i + 1}" + (rule.Name is null ? "" : $" {rule.Name}");
                asm.BeginRegion(isHooked ? where : $"chain {chainName} {where}");
                var next = asm.NewLabel($"{chainName}_rule_{i + 1}_next");
                EmitMatch(chainName, i, rule, next);
                int slot = slotOf(i);
                var verdict = rule.Verdict;
                switch (verdict.Kind)
                {
                    case VerdictKind.Accept or VerdictKind.Drop:
                        Decide(slot, verdict.Kind);
                        break;
                    case VerdictKind.Continue:
                        CountSlot(slot);
                        break;
                    case VerdictKind.Log:
                        CountSlot(slot);
                        var limits = LimitMaps.SpecOf(ruleset)!;
                        LogWriter.Emit(asm, LogMaps.SpecOf(ruleset)!, new LimitTest(limits, LimitMaps.LogRateSlot(ruleset), LimitMaps.LogRate),
                            LogMaps.IdOf(ruleset, chainName, i));
                        break;
                    case VerdictKind.Return:
                        CountSlot(slot);
                        asm.Jump(returnTo);
                        break;
                    case VerdictKind.Jump or VerdictKind.Goto:
                        CountSlot(slot);
                        var target = ruleset.FindUserChain(verdict.Target!)!;
                        var back = verdict.Kind == VerdictKind.Jump ? next : returnTo;
                        EmitRules(target.Name, target.Rules, j => layout.UserChainSlot(target.Name, j), back, isHooked: false);
                        asm.Jump(back);
                        break;
                    case VerdictKind.Reject:
                        CheckReject(chainName, i, rule);
                        CountSlot(slot);
                        RejectWriter.Emit(asm, verdict.With);
                        break;
                }
                asm.Mark(next);
            }
            asm.Jump(returnTo);
        }

        /// <summary>
        /// The classified runs of a chain's rules, planned once per chain: a user chain jumped to from several places is
        /// inlined at each, and every copy looks up the same maps (their candidates are positions within the run, and
        /// each copy adds its own first slot).
        /// </summary>
        private Dictionary<int, ClassifierSegment> Segments(string chainName, IReadOnlyList<Rule> rules)
        {
            // Offloaded programs keep to the linear form: NICs take few map types, and no LPM trie.
            if (!options.Optimize || shared) return [];
            if (_segments.TryGetValue(chainName, out var planned)) return planned;
            planned = Classifier.Plan(rules, (i, rule) => Conditions(chainName, i, rule).ToList(), options.MinimumClassifiedRun, "o", ref _tableCount,
                ClassifierMapBudget - Tables.Count);
            foreach (var segment in planned.Values) Tables.AddRange(segment.Tables);
            _segments[chainName] = planned;
            return planned;
        }

        private void EmitMatch(string chainName, int index, Rule rule, Label fail)
        {
            foreach (var condition in Conditions(chainName, index, rule)) condition.Emit(_asm, fail);
            if (rule.Match.Limit is { } limit)
                new Condition(new LimitTest(LimitMaps.SpecOf(ruleset)!, LimitMaps.SlotOf(ruleset, chainName, index), limit)).Emit(_asm, fail);
        }

        /// <summary>The rule's conditions, cheapest and most selective first; the family test guards address words.</summary>
        private IEnumerable<Condition> Conditions(string chainName, int index, Rule rule)
        {
            var m = rule.Match;
            if (ruleset.FamilyOf(rule) is { } family) yield return HeaderMatchers.Family(family);
            if (m.Protocol is { } protocol) yield return HeaderMatchers.Protocol(protocol);
            if (m.InInterface is { } inInterface)
            {
                if (!hook.SeesInInterface) throw NotSeen(chainName, index, rule, "in-interface", "the interface a packet came in on");
                yield return HeaderMatchers.Interface(inInterface, options.InterfaceIndex(inInterface.Name), incoming: true);
            }
            if (m.OutInterface is { } outInterface)
            {
                if (!hook.SeesOutInterface) throw NotSeen(chainName, index, rule, "out-interface", "the interface a packet goes out of");
                yield return HeaderMatchers.Interface(outInterface, options.InterfaceIndex(outInterface.Name), incoming: false);
            }
            if (m.Source is { } source) yield return Address(source, true);
            if (m.Destination is { } destination) yield return Address(destination, false);
            if (m.NeedsTransport) yield return HeaderMatchers.HasTransport();
            if (m.SourcePort is { } sourcePort) yield return Ports(sourcePort, true);
            if (m.DestinationPort is { } destinationPort) yield return Ports(destinationPort, false);
            if (m.TcpFlags is { } flags) yield return HeaderMatchers.TcpFlags(flags);
            if (m.IcmpType is { } icmpType) yield return HeaderMatchers.Range(PacketRecord.IcmpType, icmpType);
            if (m.IcmpCode is { } icmpCode) yield return HeaderMatchers.Range(PacketRecord.IcmpCode, icmpCode);
            if (m.Length is { } length) yield return HeaderMatchers.Range(PacketRecord.Length, length);
            if (m.Fragment is { } fragment) yield return HeaderMatchers.Fragment(fragment);
            if (m.Dscp is { } dscp) yield return HeaderMatchers.Range(PacketRecord.Dscp, dscp);
            if (m.Ttl is { } ttl) yield return HeaderMatchers.Range(PacketRecord.Ttl, ttl);
            if (m.HopLimit is { } hopLimit) yield return HeaderMatchers.Range(PacketRecord.Ttl, hopLimit);
            if (m.Mark is { } mark)
            {
                if (!hook.SeesMark) throw NotSeen(chainName, index, rule, "mark", "the packet's mark");
                yield return HeaderMatchers.Mark(mark);
            }
            if (m.CtState is not null || m.CtDirection is not null)
            {
                if (ConntrackMatcher.SourceOf(chain.Hook) == ConntrackSource.None)
                    throw NotSeen(chainName, index, rule, m.CtState is not null ? "ct-state" : "ct-direction", "the packet's connection");
                foreach (var condition in ConntrackMatcher.For(m)) yield return condition;
            }
        }

        private Condition Address(AddressMatch match, bool source) =>
            match.Set is { } set ? SetLookup.Address(ruleset.FindSet(set)!, match, source) : AddressMatcher.For(match, source);

        private Condition Ports(PortMatch match, bool source) =>
            match.Set is { } set ? SetLookup.Ports(ruleset.FindSet(set)!, match, source) : PortMatcher.For(match, source);

        /// <summary>A reject needs a hook that can send, and a kind that fits the packets the rule matches.</summary>
        private void CheckReject(string chainName, int index, Rule rule)
        {
            var with = rule.Verdict.With;
            if (!hook.CanReply)
                throw new BpfilterException("RejectNotAtHook", FailureCategory.InvalidData,
                    $"{Describe(chainName, index, rule)}: reject cannot answer at {chain.Hook.ToName()}: "
                    + (chain.Hook.IsNetfilter() || chain.Hook.Target() == HookTarget.Cgroup
                        ? "programs at netfilter and cgroup hooks cannot send packets"
                        : "only xdp rejects so far")
                    + "; attach the chain at xdp, or drop instead");
            if (with == RejectWith.TcpReset && rule.Match.Protocol is not { Negated: false, Protocol.Number: 6 })
                throw new RulesetValidationException($"{Describe(chainName, index, rule)}: reject with tcp-reset needs protocol tcp", "action", index);
            if (RejectWriter.Codes(with).V6 is null && ruleset.FamilyOf(rule) != IpFamily.Ipv4)
                throw new RulesetValidationException(
                    $"{Describe(chainName, index, rule)}: ICMPv6 has no {RejectWithNames.Format(with)}; limit the rule to IPv4 (family: ipv4)", "action", index);
        }

        private BpfilterException NotSeen(string chainName, int index, Rule rule, string key, string what) =>
            new("MatchNotAtHook", FailureCategory.InvalidData,
                $"{Describe(chainName, index, rule)}: {key} cannot be matched at {chain.Hook.ToName()}, which does not know {what}"
                + $" ({HookAdvice(key)})");

        private static string HookAdvice(string key) => key switch
        {
            "in-interface" => "in-interface is known at xdp, tc-ingress, nf-prerouting, nf-input, nf-forward and cgroup-ingress",
            "out-interface" => "out-interface is known at tc-egress, nf-forward, nf-output, nf-postrouting and cgroup-egress",
            "ct-state" or "ct-direction" => "connection state is known at the netfilter hooks, tc-ingress, tc-egress and xdp; see about_Bpfilter_Stateful",
            _ => "the mark is known at every hook but xdp",
        };

        private static string Describe(string chainName, int index, Rule rule) =>
            $"chain '{chainName}' rule {index + 1}" + (rule.Name is null ? "" : $" '{rule.Name}'");

        /// <summary>Sets the slot and the verdict and goes to the epilogue, which counts and returns.</summary>
        private void Decide(int slot, VerdictKind verdict)
        {
            _asm.Mov(Register.R9, slot);
            _asm.Mov(Register.R6, hook.ReturnCode(verdict));
            _asm.Jump(_count);
        }

        /// <summary>Counts the packet in <paramref name="slot"/> and goes on (for verdicts that do not end the packet's way).</summary>
        private void CountSlot(int slot)
        {
            _asm.Store(Size.Word, Register.R10, PacketRecord.CounterKey, slot);
            var done = _asm.NewLabel("counted");
            EmitCount(done);
            _asm.Mark(done);
        }

        /// <summary>
        /// counters[key].packets += 1; counters[key].bytes += packet length, the key at PacketRecord.CounterKey.
        /// A plain add is safe on a per-CPU slot (these hooks do not nest on one CPU); a shared slot needs an atomic add.
        /// </summary>
        private void EmitCount(Label? afterCount)
        {
            var asm = _asm;
            var done = afterCount ?? asm.NewLabel("return");
            asm.LoadMap(Register.R1, counters);
            asm.Mov(Register.R2, Register.R10);
            asm.Alu64(AluOp.Add, Register.R2, PacketRecord.CounterKey);
            asm.Call(Helper.MapLookupElem);
            asm.Jump(JumpOp.Jeq, Register.R0, 0, done);
            asm.Load(Size.DoubleWord, Register.R2, Register.R10, PacketRecord.PacketLength);
            if (shared)
            {
                asm.Mov(Register.R1, 1);
                asm.AtomicAdd(Size.DoubleWord, Register.R0, 0, Register.R1);
                asm.AtomicAdd(Size.DoubleWord, Register.R0, 8, Register.R2);
            }
            else
            {
                asm.Load(Size.DoubleWord, Register.R1, Register.R0, 0);
                asm.Alu64(AluOp.Add, Register.R1, 1);
                asm.Store(Size.DoubleWord, Register.R0, 0, Register.R1);
                asm.Load(Size.DoubleWord, Register.R1, Register.R0, 8);
                asm.Alu64(AluOp.Add, Register.R1, Register.R2);
                asm.Store(Size.DoubleWord, Register.R0, 8, Register.R1);
            }
            if (afterCount is null) asm.Mark(done);
        }
    }
}
