using System.Buffers.Binary;
using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Ebpf.Interpreter;
using Bpfilter.Engine.Formats;
using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Rules;
using Bpfilter.Engine.Simulation;
using Xunit;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// ct-state and ct-direction without a kernel: the model's spelling, the YAML keys, what the compiler refuses and
/// emits per hook, and what the compiled programs decide in the interpreter for every state the kernel can show.
/// </summary>
public sealed class ConntrackTests
{
    // --- the model -------------------------------------------------------------------------------------

    [Theory]
    [InlineData("established,related", CtStates.Established | CtStates.Related, false, "established,related")]
    [InlineData("ESTABLISHED,RELATED", CtStates.Established | CtStates.Related, false, "established,related")]
    [InlineData("!new", CtStates.New, true, "!new")]
    [InlineData(" ! invalid , untracked", CtStates.Invalid | CtStates.Untracked, true, "!invalid,untracked")]
    [InlineData("related,new,established", CtStates.New | CtStates.Established | CtStates.Related, false, "new,established,related")]
    public void States_read_in_any_case_and_print_in_one_order(string text, CtStates states, bool negated, string printed)
    {
        var match = CtStateMatch.Parse(text);
        Assert.Equal((states, negated), (match.States, match.Negated));
        Assert.Equal(printed, match.ToString());
        Assert.Equal(match, CtStateMatch.Parse(printed));
    }

    [Theory]
    [InlineData("", "is not a connection state")]
    [InlineData("established,", "is not a connection state")]
    [InlineData("SNAT", "Bpfilter does no NAT")]
    [InlineData("estab", "use new, established, related, invalid, untracked")]
    public void Unknown_states_are_errors_that_list_the_names(string text, string message)
    {
        var e = Assert.Throws<RulesetValidationException>(() => CtStateMatch.Parse(text));
        Assert.Contains(message, e.Message);
        Assert.Equal("ct-state", e.Field);
    }

    [Fact]
    public void A_list_takes_its_negation_once_before_the_first_state()
    {
        Assert.Equal(new CtStateMatch(CtStates.New | CtStates.Invalid, negated: true), CtStateMatch.Parse(["!new", "invalid"]));
        Assert.Contains("goes once", Assert.Throws<RulesetValidationException>(() => CtStateMatch.Parse(["new", "!invalid"])).Message);
        Assert.Throws<RulesetValidationException>(() => CtStateMatch.Parse(Array.Empty<string>()));
        Assert.Throws<RulesetValidationException>(() => new CtStateMatch(CtStates.None));
    }

    [Fact]
    public void Holds_is_membership_or_its_negation()
    {
        var notNew = CtStateMatch.Parse("!new");
        Assert.False(notNew.Holds(CtStates.New));
        Assert.True(notNew.Holds(CtStates.Invalid));
        Assert.True(CtStateMatch.Parse("established,related").Holds(CtStates.Related));
    }

    [Fact]
    public void Directions_and_the_match_text()
    {
        Assert.Equal(CtDirection.Reply, CtDirectionNames.Parse("REPLY"));
        Assert.Equal(CtDirection.Original, CtDirectionNames.Parse(" original "));
        Assert.Contains("original or reply", Assert.Throws<RulesetValidationException>(() => CtDirectionNames.Parse("back")).Message);
        var match = new Match { Protocol = new ProtocolMatch(IpProtocol.Tcp), CtState = CtStateMatch.Parse("!new"), CtDirection = CtDirection.Reply };
        Assert.Equal("protocol tcp ct-state !new ct-direction reply", match.ToString());
        Assert.Equal(match, match with { });
        Assert.False(match.IsAny);
    }

    // --- YAML ------------------------------------------------------------------------------------------

    private const string Header = """
        bpfilter: 1
        name: web
        chains:
          - name: INPUT
            hook: nf-input
            rules:

        """;

    private static Match ReadMatch(string match) =>
        YamlRulesetReader.Read(new StringReader(Header + $"      - {{ match: {match}, action: accept }}\n"), "x.yaml").Chains[0].Rules[0].Match;

    [Theory]
    [InlineData("{ ct-state: [established, related] }", "ct-state established,related")]
    [InlineData("{ ct-state: established }", "ct-state established")]
    [InlineData("{ ct-state: \"!new\" }", "ct-state !new")]
    [InlineData("{ ct-state: '!new,invalid' }", "ct-state !new,invalid")]
    [InlineData("{ ct-state: { not: [new, invalid] } }", "ct-state !new,invalid")]
    [InlineData("{ ct-direction: reply }", "ct-direction reply")]
    [InlineData("{ protocol: tcp, destination-port: 22, ct-state: new, ct-direction: original }", "protocol tcp destination-port 22 ct-state new ct-direction original")]
    public void Yaml_reads_ct_state_as_a_list_or_a_text(string yaml, string expected) => Assert.Equal(expected, ReadMatch(yaml).ToString());

    [Theory]
    [InlineData("{ ct-state: !new }", 7, 30, "in quotes")]
    [InlineData("{ ct-state: [new, bogus] }", 7, 36, "'bogus' is not a connection state")]
    [InlineData("{ ct-state: [new, \"!invalid\"] }", 7, 36, "a '!' inside a list is ambiguous")]
    [InlineData("{ ct-state: { new: 1 } }", 7, 32, "'new' is not a key of ct-state: a mapping here negates")]
    [InlineData("{ ct-direction: sideways }", 7, 34, "'sideways' is not a connection direction")]
    public void Yaml_errors_point_at_the_value(string yaml, long line, long column, string reason)
    {
        var e = Assert.Throws<RulesetFormatException>(() => ReadMatch(yaml));
        Assert.Contains(reason, e.Reason);
        Assert.Equal((line, column), (e.Line, e.Column));
    }

    // --- the compiler ----------------------------------------------------------------------------------

    private static readonly Rule Established = new("established", new Match { CtState = CtStateMatch.Parse("established,related") }, Verdict.Accept);

    private static Chain ChainAt(Hook hook, params Rule[] rules) => ChainAt(hook, null, rules);

    private static Chain ChainAt(Hook hook, int? priority, params Rule[] rules) => hook.Target() switch
    {
        HookTarget.Interface => new Chain("C", hook, "lo", Verdict.Drop, rules),
        HookTarget.Cgroup => new Chain("C", hook, null, Verdict.Drop, rules, cgroup: "bpft"),
        _ => new Chain("C", hook, null, Verdict.Drop, rules, priority: priority),
    };

    [Theory]
    [InlineData(Hook.CgroupIngress)]
    [InlineData(Hook.CgroupEgress)]
    public void Cgroup_hooks_know_no_connection_state(Hook hook)
    {
        var e = Assert.Throws<BpfilterException>(() => ChainCompiler.Compile(ChainAt(hook, Established)));
        Assert.Equal("MatchNotAtHook", e.ErrorId);
        Assert.Contains("ct-state cannot be matched at " + hook.ToName(), e.Message);
        Assert.Contains("about_Bpfilter_Stateful", e.Message);
        var direction = Assert.Throws<BpfilterException>(() => ChainCompiler.Compile(ChainAt(hook, new Rule("r", new Match { CtDirection = CtDirection.Reply }, Verdict.Accept))));
        Assert.Contains("ct-direction cannot be matched", direction.Message);
    }

    [Theory]
    [InlineData(Hook.NfPrerouting, -199, false)]
    [InlineData(Hook.NfPrerouting, -198, true)]
    [InlineData(Hook.NfOutput, -300, false)]
    [InlineData(Hook.NfOutput, -198, true)]
    [InlineData(Hook.NfInput, -300, true)]
    [InlineData(Hook.NfForward, -1000, true)]
    public void Prerouting_and_output_chains_must_run_after_conntrack(Hook hook, int priority, bool compiles)
    {
        var chain = ChainAt(hook, priority, Established);
        if (compiles)
        {
            ChainCompiler.Compile(chain);
            return;
        }
        var e = Assert.Throws<BpfilterException>(() => ChainCompiler.Compile(chain));
        Assert.Equal("CtStateBeforeConntrack", e.ErrorId);
        Assert.Contains("priority -198 or above", e.Message);
    }

    [Theory]
    [InlineData(Hook.Xdp, new[] { "bpf_xdp_ct_lookup", "bpf_ct_release" }, "nf_conn", "status")]
    [InlineData(Hook.TcIngress, new[] { "bpf_skb_ct_lookup", "bpf_ct_release" }, "nf_conn", "status")]
    [InlineData(Hook.TcEgress, new[] { "bpf_cast_to_kern_ctx" }, "sk_buff", "_nfct")]
    [InlineData(Hook.NfInput, new string[0], "sk_buff", "_nfct")]
    [InlineData(Hook.NfPostrouting, new string[0], "sk_buff", "_nfct")]
    public void Each_hook_reads_the_state_its_own_way(Hook hook, string[] kfuncs, string structName, string member)
    {
        var program = ChainCompiler.Compile(ChainAt(hook, Established)).Program;
        var stateless = ChainCompiler.Compile(ChainAt(hook, new Rule("udp", Matches.Simple(protocol: IpProtocol.Udp), Verdict.Accept))).Program;
        Assert.Equal(kfuncs.Order(), program.Kfuncs.Except(stateless.Kfuncs).Order());
        // The field is read at this kernel's offset, through a kernel pointer (a 64-bit load the stateless program lacks).
        int offset = Btf.MemberOffset(structName, member);
        bool Reads(EbpfProgram p) => p.Instructions.Any(i => i.Opcode == 0x79 && i.Offset == offset && i.Src != 10);
        Assert.True(Reads(program));
        Assert.False(Reads(stateless));
    }

    // --- what the programs decide ----------------------------------------------------------------------

    private static readonly Rule[] EveryState =
    [
        new("new", new Match { CtState = CtStateMatch.Parse("new") }, Verdict.Accept),
        new("established-reply", new Match { CtState = CtStateMatch.Parse("established"), CtDirection = CtDirection.Reply }, Verdict.Accept),
        new("established", new Match { CtState = CtStateMatch.Parse("established") }, Verdict.Accept),
        new("related-reply", new Match { CtState = CtStateMatch.Parse("related"), CtDirection = CtDirection.Reply }, Verdict.Accept),
        new("related", new Match { CtState = CtStateMatch.Parse("related") }, Verdict.Accept),
        new("invalid", new Match { CtState = CtStateMatch.Parse("invalid") }, Verdict.Accept),
        new("untracked", new Match { CtState = CtStateMatch.Parse("untracked") }, Verdict.Accept),
    ];

    private static string Decide(Hook hook, byte[] packet, ConntrackModel? model, params Rule[] rules)
    {
        var simulator = new ChainSimulator(ChainAt(hook, rules.Length == 0 ? EveryState : rules));
        var decision = simulator.Run(packet, conntrack: model).Decision;
        return decision.DecidedBy == Decider.Rule ? decision.Rule : decision.DecidedBy.ToString().ToLowerInvariant();
    }

    private static byte[] Tcp(Hook hook, string source = "10.0.0.1", string destination = "10.0.0.2") =>
        PacketBuilder.Build(new PacketFields { Source = source, Destination = destination, Protocol = IpProtocol.Tcp, SourcePort = 40000, DestinationPort = 22 },
            ChainSimulator.LayerOf(hook));

    [Theory]
    [InlineData(Hook.NfPrerouting)]
    [InlineData(Hook.NfInput)]
    [InlineData(Hook.NfForward)]
    [InlineData(Hook.NfOutput)]
    [InlineData(Hook.NfPostrouting)]
    [InlineData(Hook.TcEgress)]
    public void Attached_entries_give_every_state_as_iptables_reads_ctinfo(Hook hook)
    {
        var packet = Tcp(hook);
        string With(ulong nfct) => Decide(hook, packet, new ConntrackModel { SkbNfct = nfct });
        const ulong ct = ConntrackModel.ConnectionAddress;
        Assert.Equal("invalid", Decide(hook, packet, null));
        Assert.Equal("invalid", With(0));
        Assert.Equal("untracked", With(7));
        Assert.Equal("established", With(ct | 0));
        Assert.Equal("related", With(ct | 1));
        Assert.Equal("new", With(ct | 2));
        Assert.Equal("established-reply", With(ct | 3));
        Assert.Equal("related-reply", With(ct | 4));
    }

    [Theory]
    [InlineData(Hook.Xdp)]
    [InlineData(Hook.TcIngress)]
    public void Lookups_make_the_state_conntrack_will_give(Hook hook)
    {
        var packet = Tcp(hook);
        string Found(ulong status, byte direction) => Decide(hook, packet, new ConntrackModel { Lookup = new ConntrackEntry(status, direction) });
        Assert.Equal("new", Decide(hook, packet, null));                                       // nothing found: conntrack will start one
        Assert.Equal("new", Found(ConntrackEntry.Confirmed, 0));                               // found, no reply seen yet (a SYN again)
        Assert.Equal("established", Found(ConntrackEntry.Confirmed | ConntrackEntry.SeenReply, 0));
        Assert.Equal("established-reply", Found(ConntrackEntry.Confirmed, 1));                  // every reply is established
        Assert.Equal("related", Found(ConntrackEntry.Confirmed | ConntrackEntry.Expected, 0));
        Assert.Equal("established", Found(ConntrackEntry.Expected | ConntrackEntry.SeenReply, 0));
        var v6 = Tcp(hook, "2001:db8::1", "2001:db8::2");
        Assert.Equal("new", Decide(hook, v6, null));
        Assert.Equal("established-reply", Decide(hook, v6, new ConntrackModel { Lookup = new ConntrackEntry(ConntrackEntry.SeenReply, 1) }));
    }

    [Theory]
    [InlineData(Hook.Xdp)]
    [InlineData(Hook.TcIngress)]
    public void Lookups_know_only_tcp_udp_and_icmp_errors_about_them(Hook hook)
    {
        var layer = ChainSimulator.LayerOf(hook);
        var found = new ConntrackModel { Lookup = new ConntrackEntry(ConntrackEntry.SeenReply, 1) };
        var echo = PacketBuilder.Build(new PacketFields { Protocol = IpProtocol.Icmp }, layer);
        Assert.Equal("untracked", Decide(hook, echo, found));
        var gre = PacketBuilder.Build(new PacketFields { Protocol = IpProtocol.Parse("gre") }, layer);
        Assert.Equal("untracked", Decide(hook, gre, found));
        var later = PacketBuilder.Build(new PacketFields { Protocol = IpProtocol.Udp, FragmentOffset = 10 }, layer);
        Assert.Equal("untracked", Decide(hook, later, found));

        // An ICMP error quoting UDP: related (in the direction found) when the connection is known, invalid when not.
        var error = Frame(layer, Conversation.PortUnreachable("10.0.0.2", "10.0.0.1", 5300, 53));
        Assert.Equal("related-reply", Decide(hook, error, found));
        Assert.Equal("related", Decide(hook, error, new ConntrackModel { Lookup = new ConntrackEntry(ConntrackEntry.SeenReply, 0) }));
        Assert.Equal("invalid", Decide(hook, error, null));
        // The same error quoting an ICMP echo: the lookup cannot ask about it.
        var quotingIcmp = Conversation.PortUnreachable("10.0.0.2", "10.0.0.1", 5300, 53);
        quotingIcmp[28 + 9] = 1;
        Assert.Equal("untracked", Decide(hook, Frame(layer, quotingIcmp), found));
        // Cut inside the quote: untracked, not malformed (the packet itself is whole).
        Assert.Equal("untracked", Decide(hook, Frame(layer, Conversation.PortUnreachable("10.0.0.2", "10.0.0.1", 5300, 53)[..40]), found));
    }

    [Theory]
    [InlineData(Hook.Xdp)]
    [InlineData(Hook.NfInput)]
    public void Icmpv6_errors_quoting_udp_are_related(Hook hook)
    {
        var layer = ChainSimulator.LayerOf(hook);
        var quoted = PacketBuilder.Build(new PacketFields { Source = "2001:db8::2", Destination = "2001:db8::1", Protocol = IpProtocol.Udp, SourcePort = 5300, DestinationPort = 53 }, PacketLayer.Network);
        var error = new byte[40 + 8 + quoted.Length];
        error[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(error.AsSpan(4), (ushort)(8 + quoted.Length));
        error[6] = 58;
        error[7] = 64;
        System.Net.IPAddress.Parse("2001:db8::1").GetAddressBytes().CopyTo(error, 8);
        System.Net.IPAddress.Parse("2001:db8::2").GetAddressBytes().CopyTo(error, 24);
        error[40] = 1; // destination unreachable
        error[41] = 4; // port unreachable
        quoted.CopyTo(error, 48);
        var model = hook == Hook.Xdp
            ? new ConntrackModel { Lookup = new ConntrackEntry(ConntrackEntry.SeenReply, 1) }
            : new ConntrackModel { SkbNfct = ConntrackModel.ConnectionAddress | 4 };
        Assert.Equal("related-reply", Decide(hook, Frame(layer, error, ipv6: true), model));
    }

    [Fact]
    public void Ct_direction_alone_needs_a_connection_and_beside_ct_state_ignores_its_absence()
    {
        var packet = Tcp(Hook.NfInput);
        var reply = new Rule("reply", new Match { CtDirection = CtDirection.Reply }, Verdict.Accept);
        var invalidReply = new Rule("invalid-reply", new Match { CtState = CtStateMatch.Parse("invalid"), CtDirection = CtDirection.Reply }, Verdict.Accept);
        var notNewOriginal = new Rule("not-new-original", new Match { CtState = CtStateMatch.Parse("!new"), CtDirection = CtDirection.Original }, Verdict.Accept);
        Assert.Equal("policy", Decide(Hook.NfInput, packet, null, reply));
        Assert.Equal("invalid-reply", Decide(Hook.NfInput, packet, null, invalidReply));          // iptables: --ctdir is not asked without a connection
        Assert.Equal("not-new-original", Decide(Hook.NfInput, packet, new ConntrackModel { SkbNfct = 7 }, notNewOriginal));
        Assert.Equal("policy", Decide(Hook.NfInput, packet, new ConntrackModel { SkbNfct = ConntrackModel.ConnectionAddress | 3 }, notNewOriginal));
        Assert.Equal("not-new-original", Decide(Hook.NfInput, packet, new ConntrackModel { SkbNfct = ConntrackModel.ConnectionAddress | 1 }, notNewOriginal));
    }

    [Fact]
    public void Rules_in_user_chains_get_the_state_too()
    {
        var user = new UserChain("STATE", [Established]);
        var chain = new Chain("C", Hook.NfInput, null, Verdict.Drop, [new Rule("to-state", Match.Any, Verdict.Jump("STATE"))]);
        var ruleset = new Ruleset("r", [chain], userChains: [user]);
        var simulator = new ChainSimulator(ChainCompiler.Compile(ruleset, chain, CompileOptions.Simulation));
        var decision = simulator.Run(Tcp(Hook.NfInput), conntrack: new ConntrackModel { SkbNfct = ConntrackModel.ConnectionAddress | 3 }).Decision;
        Assert.Equal(("established", "STATE"), (decision.Rule, decision.Chain));
    }

    private static byte[] Frame(PacketLayer layer, byte[] ip, bool ipv6 = false)
    {
        if (layer == PacketLayer.Network) return ip;
        var frame = new byte[14 + ip.Length];
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), ipv6 ? (ushort)0x86dd : (ushort)0x0800);
        ip.CopyTo(frame, 14);
        return frame;
    }

    [Fact]
    public void The_server_ruleset_of_the_help_topic_reads_and_decides_as_it_says()
    {
        var topic = File.ReadAllText(Path.Combine(Samples.Root, "en-US", "about_Bpfilter_Stateful.help.txt"));
        var start = topic.IndexOf("        bpfilter: 1", StringComparison.Ordinal);
        var end = topic.IndexOf("\n\n", start, StringComparison.Ordinal);
        var yaml = string.Join("\n", topic[start..end].Split('\n').Select(l => l.Length >= 8 ? l[8..] : l)) + "\n";
        var ruleset = YamlRulesetReader.Read(new StringReader(yaml), "about_Bpfilter_Stateful");
        var chain = ruleset.Chains.Single();
        string Decide(PacketFields fields, CtStates? state, CtDirection? direction = null)
        {
            var result = Simulator.Test(ruleset, chain, fields, context: state is null ? null : new PacketContext(CtState: state, CtDirection: direction));
            return result.Decision.DecidedBy == Decider.Rule ? result.Decision.Rule : "policy";
        }
        var tcp = new PacketFields { Protocol = IpProtocol.Tcp, SourcePort = 40000, DestinationPort = 22 };
        Assert.Equal("ssh", Decide(tcp, CtStates.New));
        Assert.Equal("established", Decide(tcp with { SourcePort = 443, DestinationPort = 40000 }, CtStates.Established, CtDirection.Reply));
        Assert.Equal("invalid", Decide(tcp, CtStates.Invalid));
        Assert.Equal("policy", Decide(tcp with { DestinationPort = 80 }, CtStates.New));
        Assert.Equal("loopback", Decide(tcp with { Source = "127.0.0.1", Destination = "127.0.0.1", DestinationPort = 5432 }, CtStates.New));
        Assert.Equal("ping", Decide(new PacketFields { Protocol = IpProtocol.Icmp, IcmpType = 8 }, CtStates.New));
        Assert.Equal("neighbour-discovery", Decide(new PacketFields { Source = "fe80::1", Destination = "fe80::2", Protocol = IpProtocol.Icmp, IcmpType = 135 }, CtStates.Untracked));
    }

    // --- Test-BpfPacket's mapping, and the interpreter's own checks -------------------------------------

    [Fact]
    public void Test_packet_states_map_per_hook_and_refuse_what_cannot_be()
    {
        var ruleset = new Ruleset("r", [ChainAt(Hook.Xdp)]);
        Assert.Equal("established-reply", Simulator.Test(new Ruleset("r", [ChainAt(Hook.NfInput, EveryState)]), ChainAt(Hook.NfInput, EveryState),
            new PacketFields { Protocol = IpProtocol.Tcp, SourcePort = 22, DestinationPort = 40000 }, context: new PacketContext(CtState: CtStates.Established, CtDirection: CtDirection.Reply)).Decision.Rule);
        Assert.Equal("related", Simulator.Test(new Ruleset("r", [ChainAt(Hook.Xdp, EveryState)]), ChainAt(Hook.Xdp, EveryState),
            new PacketFields { Protocol = IpProtocol.Tcp, SourcePort = 22, DestinationPort = 40000 }, context: new PacketContext(CtState: CtStates.Related)).Decision.Rule);
        Assert.Equal("untracked", Simulator.Test(new Ruleset("r", [ChainAt(Hook.TcEgress, EveryState)]), ChainAt(Hook.TcEgress, EveryState),
            new PacketFields(), context: new PacketContext(CtState: CtStates.Untracked)).Decision.Rule);

        void Refused(Hook hook, CtStates state, CtDirection? direction, string message, bool kernel = false)
        {
            var chain = ChainAt(hook, EveryState);
            var e = Assert.Throws<BpfilterException>(() => Simulator.Test(new Ruleset("r", [chain]), chain, new PacketFields(), kernel, new PacketContext(CtState: state, CtDirection: direction)));
            Assert.Equal("CtStateInvalid", e.ErrorId);
            Assert.Contains(message, e.Message);
        }
        Refused(Hook.Xdp, CtStates.Invalid, null, "a lookup never answers invalid");
        Refused(Hook.TcIngress, CtStates.Untracked, null, "a lookup never answers untracked");
        Refused(Hook.NfInput, CtStates.New, CtDirection.Reply, "a new packet goes the original way");
        Refused(Hook.NfInput, CtStates.Invalid, CtDirection.Original, "has no direction");
        Refused(Hook.NfInput, CtStates.New | CtStates.Established, null, "takes one state");
        Refused(Hook.NfInput, CtStates.New, null, "cannot go with -Kernel", kernel: true);
        Assert.Contains("needs -CtState", Assert.Throws<BpfilterException>(() => Simulator.Test(ruleset, ruleset.Chains[0], new PacketFields(), context: new PacketContext(CtDirection: CtDirection.Reply))).Message);
    }

    /// <summary>Where the interpreter's nf_conn keeps its status in these tests (any offset: the layout says).</summary>
    private const short StatusOffset = 128;

    /// <summary>A program that looks a connection up at XDP: r2 = tuple (zeroed), r4 = opts (l4proto tcp).</summary>
    private static void EmitLookup(Assembler asm)
    {
        for (short at = -64; at < 0; at += 8) asm.Store(Size.DoubleWord, Register.R10, at, 0);
        asm.Store(Size.Word, Register.R10, -16, -1);
        asm.Store(Size.Byte, Register.R10, -8, 6);
        asm.Mov(Register.R2, Register.R10);
        asm.Alu64(AluOp.Add, Register.R2, -64);
        asm.Mov(Register.R3, 12);
        asm.Mov(Register.R4, Register.R10);
        asm.Alu64(AluOp.Add, Register.R4, -16);
        asm.Mov(Register.R5, 16);
        asm.CallKfunc("bpf_xdp_ct_lookup");
    }

    private static InterpreterException Faults(Action<Assembler> body)
    {
        var asm = new Assembler();
        EmitLookup(asm);
        body(asm);
        var program = asm.Assemble("t", ProgramType.Xdp);
        var interpreter = new EbpfInterpreter(program, new Dictionary<MapSpec, InMemoryMap>(), new InterpreterOptions { Conntrack = new ConntrackLayout(104, StatusOffset) });
        return Assert.Throws<InterpreterException>(() => interpreter.Run(new byte[64], null, new ConntrackModel { Lookup = new ConntrackEntry(2, 0) }));
    }

    [Fact]
    public void The_interpreter_holds_programs_to_the_verifier_rules_of_references()
    {
        Assert.Contains("Unreleased reference", Faults(asm => { asm.Mov(Register.R0, 2L); asm.Exit(); }).Message);
        Assert.Contains("releases a connection a second time", Faults(asm =>
        {
            asm.Mov(Register.R6, Register.R0);
            asm.Mov(Register.R1, Register.R6);
            asm.CallKfunc("bpf_ct_release");
            asm.Mov(Register.R1, Register.R6);
            asm.CallKfunc("bpf_ct_release");
            asm.Exit();
        }).Message);
        Assert.Contains("released already", Faults(asm =>
        {
            asm.Mov(Register.R6, Register.R0);
            asm.Mov(Register.R1, Register.R6);
            asm.CallKfunc("bpf_ct_release");
            asm.Load(Size.DoubleWord, Register.R0, Register.R6, StatusOffset);
            asm.Exit();
        }).Message);
        Assert.Contains("does not model", Faults(asm =>
        {
            asm.Load(Size.DoubleWord, Register.R1, Register.R0, StatusOffset + 8);
            asm.Exit();
        }).Message);
    }

    [Fact]
    public void A_lookup_with_bad_arguments_fails_as_the_kernel_does()
    {
        var asm = new Assembler();
        EmitLookup(asm);
        asm.Load(Size.Word, Register.R0, Register.R10, -12); // opts->error
        asm.Exit();
        var program = asm.Assemble("t", ProgramType.Xdp);
        var code = program.Instructions.ToArray();
        var interpreter = new EbpfInterpreter(program, new Dictionary<MapSpec, InMemoryMap>());
        Assert.Equal(unchecked((uint)-2), interpreter.Run(new byte[64]).ReturnCode); // nothing found: -ENOENT
        // l4proto ICMP: -EPROTO, whatever the model holds.
        var icmp = new EbpfProgram("t", ProgramType.Xdp, 0, code.Select(i => i.Opcode == 0x72 && i.Offset == -8 ? i with { Immediate = 1 } : i).ToArray(),
            [], program.KfuncReferences, []);
        Assert.Equal(unchecked((uint)-71), new EbpfInterpreter(icmp, new Dictionary<MapSpec, InMemoryMap>())
            .Run(new byte[64], null, new ConntrackModel { Lookup = new ConntrackEntry(2, 0) }).ReturnCode);
    }
}
