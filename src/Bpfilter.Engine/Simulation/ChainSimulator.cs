using System.Buffers.Binary;
using System.Text.RegularExpressions;
using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Compiler.Matchers;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Ebpf.Interpreter;
using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Simulation;

/// <summary>One interpreter run of a chain: the decision, the rules tried, and what the interpreter did.</summary>
public sealed record SimulatedRun(PacketDecision Decision, IReadOnlyList<int> EvaluatedPositions, ExecutionResult Execution);

/// <summary>
/// A chain compiled once with <see cref="ChainCompiler"/> and run in the interpreter on in-memory maps, as the kernel
/// would run it: the decision comes from the counter slot the run added to (the deployment's own record), the rules
/// tried from the instruction regions the run passed through. Counters accumulate over runs, as in the kernel.
/// </summary>
public sealed partial class ChainSimulator
{
    private readonly string?[] _regionOf;
    private readonly int?[] _ruleOf;
    private readonly (int First, int Last)?[] _classifiedOf;

    public ChainSimulator(Chain chain, InterpreterOptions? options = null)
        : this(ChainCompiler.Compile(chain), options)
    {
    }

    public ChainSimulator(CompiledChain compiled, InterpreterOptions? options = null)
    {
        Compiled = compiled;
        Maps = InMemoryMap.CreateAll(compiled.Program);
        foreach (var (set, spec) in compiled.Sets)
        {
            foreach (var key in SetMaps.KeysOf(set)) Maps[spec].Update(key, SetMaps.Present);
        }
        foreach (var table in compiled.LookupTables)
        {
            foreach (var (key, value) in table.Entries)
                if (Maps[table.Map].Update(key, value) != 0) throw new InvalidOperationException($"the interpreter's map {table.Map.Name} refused an entry");
        }
        Interpreter = new EbpfInterpreter(compiled.Program, Maps, (options ?? new InterpreterOptions()) with
        {
            RecordPath = true,
            KernelFields = compiled.Program.Type == ProgramType.Netfilter ? NetfilterKernelFields.Value : [],
            Conntrack = compiled.Ruleset is { } ruleset && ConntrackMatcher.Uses(ruleset, compiled.Chain) ? ConntrackFields.Value : null,
        });
        Layer = LayerOf(compiled.Chain.Hook);
        int count = compiled.Program.Instructions.Count;
        _regionOf = new string?[count];
        _ruleOf = new int?[count];
        _classifiedOf = new (int, int)?[count];
        foreach (var region in compiled.Program.Regions)
        {
            var rule = RuleRegion().Match(region.Label);
            var run = ClassifiedRegion().Match(region.Label);
            for (int i = Math.Max(0, region.Start); i < Math.Min(count, region.End); i++)
            {
                _regionOf[i] = region.Label;
                _ruleOf[i] = rule.Success ? int.Parse(rule.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : null;
                if (run.Success)
                    _classifiedOf[i] = (int.Parse(run.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture),
                        int.Parse(run.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture));
            }
        }
    }

    public Chain Chain => Compiled.Chain;
    public CompiledChain Compiled { get; }
    public EbpfInterpreter Interpreter { get; }
    public IReadOnlyDictionary<MapSpec, InMemoryMap> Maps { get; }
    public InMemoryMap Counters => Maps[Compiled.Counters];

    /// <summary>What the chain's program sees of a packet.</summary>
    public PacketLayer Layer { get; }

    public static PacketLayer LayerOf(Hook hook) =>
        hook is Hook.Xdp or Hook.TcIngress or Hook.TcEgress ? PacketLayer.Ethernet : PacketLayer.Network;

    /// <summary>
    /// Runs the chain's program on <paramref name="packet"/> (the bytes at <see cref="Layer"/>). Connection tracking
    /// shows the run <paramref name="conntrack"/> when given, else what <paramref name="context"/>'s state means at this
    /// hook (<see cref="ConntrackSimulation"/>), else nothing.
    /// </summary>
    public SimulatedRun Run(ReadOnlySpan<byte> packet, PacketContext? context = null, ConntrackModel? conntrack = null)
    {
        context ??= PacketContext.None;
        conntrack ??= context.CtState is { } state ? ConntrackSimulation.For(Chain.Hook, state, context.CtDirection) : null;
        var before = CounterTotals();
        var execution = Interpreter.Run(packet, ContextValues(packet, context), conntrack);
        var after = CounterTotals();
        var decision = Decide(Compiled, before, after, (int)execution.ReturnCode);
        var evaluated = new List<int>();
        foreach (var pc in execution.Path)
        {
            if (_ruleOf[pc] is int rule && (evaluated.Count == 0 || evaluated[^1] != rule)) evaluated.Add(rule);
            else if (_classifiedOf[pc] is { } run && (evaluated.Count == 0 || evaluated[^1] != run.Last))
            {
                // A classified run looks its rules up together: it tried each up to the one that decided, or all of them.
                int last = decision.Position is int decided && decided >= run.First && decided <= run.Last ? decided : run.Last;
                for (int r = run.First; r <= last; r++) evaluated.Add(r);
            }
        }
        return new SimulatedRun(decision, evaluated, execution);
    }

    /// <summary>The name the results give the rule at 1-based <paramref name="position"/>.</summary>
    public string RuleName(int position) => Chain.Rules[position - 1].Name ?? $"#{position}";

    /// <summary>The label of the instruction region that holds instruction <paramref name="index"/> ("prologue", "rule 2 no-telnet", ...).</summary>
    public string? RegionOf(int index) => index >= 0 && index < _regionOf.Length ? _regionOf[index] : null;

    /// <summary>Packets and bytes per counter slot, summed over CPUs.</summary>
    public (ulong Packets, ulong Bytes)[] CounterTotals() => CounterTotals(Counters.LookupPerCpu, Compiled.Layout.SlotCount);

    internal static (ulong Packets, ulong Bytes)[] CounterTotals(Func<uint, byte[][]> read, int slots)
    {
        var totals = new (ulong, ulong)[slots];
        for (int slot = 0; slot < slots; slot++)
        {
            ulong packets = 0, bytes = 0;
            foreach (var cpu in read((uint)slot))
            {
                packets += BinaryPrimitives.ReadUInt64LittleEndian(cpu);
                bytes += BinaryPrimitives.ReadUInt64LittleEndian(cpu.AsSpan(8));
            }
            totals[slot] = (packets, bytes);
        }
        return totals;
    }

    /// <summary>
    /// The decision from the one deciding slot whose packet count grew (a rule that accepts or drops, the policy, not
    /// ip or malformed; rules that continue, jump or return count the packet too, and do not decide), and the return code.
    /// </summary>
    internal static PacketDecision Decide(CompiledChain compiled, (ulong Packets, ulong Bytes)[] before, (ulong Packets, ulong Bytes)[] after, int returnCode)
    {
        var layout = compiled.Layout;
        var chain = compiled.Chain;
        var userRules = new Dictionary<int, (string Chain, int Index)>();
        foreach (var slots in layout.UserChains)
        {
            for (int i = 0; i < slots.RuleCount; i++) userRules[slots.FirstSlot + i] = (slots.Chain, i);
        }
        IReadOnlyList<Rule>? RulesOf(string name) => compiled.Ruleset?.FindUserChain(name)?.Rules;
        bool Decides(int slot) =>
            slot < layout.RuleCount ? chain.Rules[slot].Verdict.IsFinal
            : userRules.TryGetValue(slot, out var user) ? RulesOf(user.Chain)?[user.Index].Verdict.IsFinal ?? true
            : true;
        var changed = Enumerable.Range(0, before.Length).Where(s => after[s].Packets != before[s].Packets && Decides(s)).ToList();
        if (changed.Count != 1)
            throw new BpfilterException("SimulationInconclusive", FailureCategory.InvalidOperation,
                $"chain {chain.Name}: the program counted the packet in {changed.Count} deciding slots, not one, so what decided it is unknown");
        int slot = changed[0];
        var hook = HookFlavour.For(chain.Hook);
        Verdict? verdict = returnCode == hook.ReturnCode(VerdictKind.Drop) ? Verdict.Drop
            : returnCode == hook.ReturnCode(VerdictKind.Accept) ? Verdict.Accept
            : hook.CanReply && returnCode == XdpFlavour.Transmit ? Verdict.Reject() : null;
        ulong bytes = after[slot].Bytes - before[slot].Bytes;
        if (slot < layout.RuleCount)
            return new PacketDecision(verdict, chain.Rules[slot].Name ?? $"#{slot + 1}", slot + 1, Decider.Rule, returnCode, bytes);
        if (userRules.TryGetValue(slot, out var decided))
            return new PacketDecision(verdict, RulesOf(decided.Chain)?[decided.Index].Name ?? $"#{decided.Index + 1}", decided.Index + 1, Decider.Rule, returnCode, bytes, decided.Chain);
        var decider = slot == layout.PolicySlot ? Decider.Policy : slot == layout.NotIpSlot ? Decider.NotIp : Decider.Malformed;
        return new PacketDecision(verdict, "", null, decider, returnCode, bytes);
    }

    /// <summary>
    /// The context fields the kernel would fill: for socket buffers, the protocol (__be16 as the u32 reads it); and the
    /// interfaces and mark of <paramref name="context"/> where the hook has them (names resolved as the compiler does).
    /// </summary>
    private IReadOnlyDictionary<string, ulong> ContextValues(ReadOnlySpan<byte> packet, PacketContext context)
    {
        var values = new Dictionary<string, ulong>();
        uint In() => context.InInterface is { } name ? CompileOptions.SimulatedIndex(name) : 0;
        uint Out() => context.OutInterface is { } name ? CompileOptions.SimulatedIndex(name) : 0;
        if (Interpreter.Context == ContextLayout.SkBuff)
        {
            ushort etherType = 0;
            if (Layer == PacketLayer.Ethernet && packet.Length >= 14) etherType = BinaryPrimitives.ReadUInt16BigEndian(packet[12..]);
            else if (Layer == PacketLayer.Network && packet.Length >= 1) etherType = (packet[0] >> 4) switch { 4 => 0x0800, 6 => 0x86dd, _ => 0 };
            values["protocol"] = BinaryPrimitives.ReverseEndianness(etherType);
            values["mark"] = context.Mark;
            bool incoming = Chain.Hook is Hook.TcIngress or Hook.CgroupIngress;
            if (incoming && context.InInterface is not null) values["ingress_ifindex"] = In();
            values["ifindex"] = incoming ? In() : Out();
        }
        else if (Interpreter.Context == ContextLayout.XdpMd)
        {
            if (context.InInterface is not null) values["ingress_ifindex"] = In();
        }
        else if (Interpreter.Context == ContextLayout.NfCtx)
        {
            values["state.in.ifindex"] = In();
            values["state.out.ifindex"] = Out();
            values["skb.mark"] = context.Mark;
        }
        return values;
    }

    /// <summary>What netfilter programs read through their context's kernel pointers, at this kernel's offsets.</summary>
    private static readonly Lazy<IReadOnlyList<KernelField>> NetfilterKernelFields = new(() =>
    {
        int ifindex = Btf.MemberOffset("net_device", "ifindex");
        return
        [
            new KernelField("state.in.ifindex", [8, ifindex], ["struct net_device"], 4),
            new KernelField("state.out.ifindex", [16, ifindex], ["struct net_device"], 4),
            new KernelField("skb.mark", [Btf.MemberOffset("sk_buff", "mark")], [], 4),
        ];
    });

    /// <summary>Where this kernel keeps what the conntrack model fills in.</summary>
    private static readonly Lazy<ConntrackLayout> ConntrackFields = new(() =>
        new ConntrackLayout(Btf.MemberOffset("sk_buff", "_nfct"), Btf.MemberOffset("nf_conn", "status")));

    [GeneratedRegex(@"^rule (\d+)(?: |$)")]
    private static partial Regex RuleRegion();

    [GeneratedRegex(@"^rules (\d+)-(\d+) classified")]
    private static partial Regex ClassifiedRegion();
}
