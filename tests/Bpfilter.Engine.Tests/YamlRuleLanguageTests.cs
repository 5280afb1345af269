using Bpfilter.Engine.Formats;
using Bpfilter.Engine.Rules;
using Xunit;
using Regex = System.Text.RegularExpressions.Regex;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// The rule language of YAML format v1 (about_Bpfilter_Rulesets): every value form of every match key, every action,
/// sets and user chains read into the model; every error, the model's own included, lands on the key or value at
/// fault.
/// </summary>
public sealed class YamlRuleLanguageTests
{
    /// <summary>Three sets and a chain up to "rules:"; the first rule is on line <see cref="RuleLine"/>.</summary>
    private const string Header = """
        bpfilter: 1
        name: demo
        sets:
          blocklist: { type: ipv4-net, elements: [203.0.113.0/24] }
          ports: { type: port, elements: [80, 8000-8080] }
          v6hosts: { type: ipv6-addr, elements: ["2001:db8::1"] }
        chains:
          - name: INPUT
            hook: nf-input
            rules:

        """;

    private const int RuleLine = 11;

    private static Ruleset Read(string yaml) => YamlRulesetReader.Read(new StringReader(yaml.ReplaceLineEndings("\n")), "x.yaml");

    private static string RuleWith(string match) => $"      - {{ match: {{ {match} }}, action: drop }}";

    private static Match MatchOf(string match) => Assert.Single(Assert.Single(Read(Header + RuleWith(match) + "\n").Chains).Rules).Match;

    private static RulesetFormatException Fails(string yaml, long line, long column, string reasonPart)
    {
        var e = Assert.Throws<RulesetFormatException>(() => Read(yaml));
        Assert.True((line, column) == (e.Line, e.Column), $"expected {line}:{column}, got {e.Line}:{e.Column}: {e.Reason}");
        Assert.Contains(reasonPart, e.Reason);
        return e;
    }

    /// <summary>A rule with <paramref name="match"/> fails at the first occurrence of <paramref name="at"/> on its line.</summary>
    private static RulesetFormatException MatchFails(string match, string at, string reasonPart)
    {
        var line = RuleWith(match);
        Assert.Contains(at, line);
        return Fails(Header + line + "\n", RuleLine, line.IndexOf(at, StringComparison.Ordinal) + 1, reasonPart);
    }

    private static IpPrefix P(string text) => IpPrefix.Parse(text);

    // ---- The example of the format -----------------------------------------------------------------------------------

    /// <summary>The example of about_Bpfilter_Rulesets and the format's design.</summary>
    internal const string Example = """
        bpfilter: 1
        name: web
        sets:
          blocklist: { type: ipv4-net, elements: [203.0.113.0/24, 198.51.100.7] }
        chains:
          - name: INPUT
            hook: nf-input
            policy: drop
            rules:
              - { name: ssh, match: { protocol: tcp, destination-port: 22, source: "!10.0.0.0/8" }, action: accept }
              - match: { source: "@blocklist" }
                action: drop
              - match: { protocol: tcp, destination-port: [80, 443, 8000-8080], tcp-flags: syn }
                action: { jump: WEB }
              - match: { protocol: icmp, icmp-type: echo-request, limit: { rate: 5/second, burst: 10 } }
                action: accept
              - action: { log: "IN-DROP: " }
              - action: { reject: tcp-reset }
          - name: WEB          # no hook: a user chain
            rules:
              - { match: { in-interface: eth0 }, action: return }
        """;

    [Fact]
    public void The_example_ruleset_of_the_format_reads_into_the_model()
    {
        var ruleset = Read(Example);
        var expected = new Ruleset("web",
            [
                new Chain("INPUT", Hook.NfInput, null, Verdict.Drop,
                [
                    new Rule("ssh", new Match
                    {
                        Source = new AddressMatch([P("10.0.0.0/8")], negated: true),
                        Protocol = new ProtocolMatch(IpProtocol.Tcp),
                        DestinationPort = PortMatch.Single(22),
                    }, Verdict.Accept),
                    new Rule(null, new Match { Source = AddressMatch.InSet("blocklist") }, Verdict.Drop),
                    new Rule(null, new Match
                    {
                        Protocol = new ProtocolMatch(IpProtocol.Tcp),
                        DestinationPort = new PortMatch([new PortRange(80, 80), new PortRange(443, 443), new PortRange(8000, 8080)]),
                        TcpFlags = TcpFlagsMatch.Syn,
                    }, Verdict.Jump("WEB")),
                    new Rule(null, new Match
                    {
                        Protocol = new ProtocolMatch(IpProtocol.Icmp),
                        IcmpType = RangeMatch.Exactly(8),
                        Limit = new LimitMatch(5, RateUnit.Second, 10),
                    }, Verdict.Accept),
                    new Rule(null, Match.Any, Verdict.Log("IN-DROP: ")),
                    new Rule(null, Match.Any, Verdict.Reject(RejectWith.TcpReset)),
                ]),
            ],
            userChains: [new UserChain("WEB", [new Rule(null, new Match { InInterface = new InterfaceMatch("eth0") }, Verdict.Return)])],
            sets: [new NamedSet("blocklist", SetType.Ipv4Network, [new SetElement(P("203.0.113.0/24")), new SetElement(P("198.51.100.7"))])]);
        YamlRulesetWriterTests.AssertSameRuleset(expected, ruleset);
    }

    // ---- Every value form of every match key -------------------------------------------------------------------------

    public static TheoryData<string, Match> Forms => new()
    {
        { "family: ipv6", new Match { Family = IpFamily.Ipv6 } },
        { "in-interface: eth0", new Match { InInterface = new InterfaceMatch("eth0") } },
        { "in-interface: \"!eth0\"", new Match { InInterface = new InterfaceMatch("eth0", true) } },
        { "out-interface: { not: wg0 }", new Match { OutInterface = new InterfaceMatch("wg0", true) } },
        { "source: 10.0.0.1", new Match { Source = new AddressMatch([P("10.0.0.1")]) } },
        { "source: \"2001:db8::/32\"", new Match { Source = new AddressMatch([P("2001:db8::/32")]) } },
        { "destination: [10.0.0.0/8, 192.168.0.0/16]", new Match { Destination = new AddressMatch([P("10.0.0.0/8"), P("192.168.0.0/16")]) } },
        { "destination: { not: [10.0.0.0/8, 192.168.0.0/16] }", new Match { Destination = new AddressMatch([P("10.0.0.0/8"), P("192.168.0.0/16")], true) } },
        { "source: \"!10.0.0.0/8\"", new Match { Source = new AddressMatch([P("10.0.0.0/8")], true) } },
        { "source: { not: 10.0.0.0/8 }", new Match { Source = new AddressMatch([P("10.0.0.0/8")], true) } },
        { "source: \"@blocklist\"", new Match { Source = AddressMatch.InSet("blocklist") } },
        { "destination: \"!@v6hosts\"", new Match { Destination = AddressMatch.InSet("v6hosts", true) } },
        { "source: { not: \"@blocklist\" }", new Match { Source = AddressMatch.InSet("blocklist", true) } },
        { "protocol: tcp", new Match { Protocol = new ProtocolMatch(IpProtocol.Tcp) } },
        { "protocol: 47", new Match { Protocol = new ProtocolMatch(new IpProtocol(47)) } },
        { "protocol: \"!udp\"", new Match { Protocol = new ProtocolMatch(IpProtocol.Udp, true) } },
        { "protocol: { not: 132 }", new Match { Protocol = new ProtocolMatch(new IpProtocol(132), true) } },
        { "protocol: tcp, destination-port: 22", new Match { Protocol = new ProtocolMatch(IpProtocol.Tcp), DestinationPort = PortMatch.Single(22) } },
        { "protocol: udp, source-port: 1000-2000", new Match { Protocol = new ProtocolMatch(IpProtocol.Udp), SourcePort = new PortMatch([new PortRange(1000, 2000)]) } },
        { "protocol: tcp, destination-port: [80, 443, 8000-8080]", new Match { Protocol = new ProtocolMatch(IpProtocol.Tcp),
            DestinationPort = new PortMatch([new PortRange(80, 80), new PortRange(443, 443), new PortRange(8000, 8080)]) } },
        { "protocol: tcp, destination-port: { not: [22, 23] }", new Match { Protocol = new ProtocolMatch(IpProtocol.Tcp),
            DestinationPort = new PortMatch([new PortRange(22, 22), new PortRange(23, 23)], true) } },
        { "protocol: tcp, destination-port: \"!1024-65535\"", new Match { Protocol = new ProtocolMatch(IpProtocol.Tcp),
            DestinationPort = new PortMatch([new PortRange(1024, 65535)], true) } },
        { "protocol: tcp, destination-port: \"@ports\"", new Match { Protocol = new ProtocolMatch(IpProtocol.Tcp), DestinationPort = PortMatch.InSet("ports") } },
        { "protocol: udp, source-port: \"!@ports\"", new Match { Protocol = new ProtocolMatch(IpProtocol.Udp), SourcePort = PortMatch.InSet("ports", true) } },
        { "protocol: tcp, tcp-flags: syn", new Match { Protocol = new ProtocolMatch(IpProtocol.Tcp), TcpFlags = TcpFlagsMatch.Syn } },
        { "protocol: tcp, tcp-flags: SYN", new Match { Protocol = new ProtocolMatch(IpProtocol.Tcp), TcpFlags = TcpFlagsMatch.Syn } },
        { "protocol: tcp, tcp-flags: \"!syn\"", new Match { Protocol = new ProtocolMatch(IpProtocol.Tcp),
            TcpFlags = new TcpFlagsMatch(TcpFlagsMatch.Syn.Mask, TcpFlagsMatch.Syn.Set, true) } },
        { "protocol: tcp, tcp-flags: \"SYN,ACK,FIN,RST SYN\"", new Match { Protocol = new ProtocolMatch(IpProtocol.Tcp), TcpFlags = TcpFlagsMatch.Syn } },
        { "protocol: tcp, tcp-flags: \"ALL NONE\"", new Match { Protocol = new ProtocolMatch(IpProtocol.Tcp), TcpFlags = new TcpFlagsMatch(TcpFlags.All, TcpFlags.None) } },
        { "protocol: tcp, tcp-flags: { mask: [SYN, ACK], set: [ACK] }", new Match { Protocol = new ProtocolMatch(IpProtocol.Tcp),
            TcpFlags = new TcpFlagsMatch(TcpFlags.Syn | TcpFlags.Ack, TcpFlags.Ack) } },
        { "protocol: tcp, tcp-flags: { mask: \"FIN,RST\", set: NONE }", new Match { Protocol = new ProtocolMatch(IpProtocol.Tcp),
            TcpFlags = new TcpFlagsMatch(TcpFlags.Fin | TcpFlags.Rst, TcpFlags.None) } },
        { "protocol: tcp, tcp-flags: { not: { mask: [SYN, RST], set: [SYN, RST] } }", new Match { Protocol = new ProtocolMatch(IpProtocol.Tcp),
            TcpFlags = new TcpFlagsMatch(TcpFlags.Syn | TcpFlags.Rst, TcpFlags.Syn | TcpFlags.Rst, true) } },
        { "protocol: tcp, tcp-flags: { not: \"FIN,SYN FIN,SYN\" }", new Match { Protocol = new ProtocolMatch(IpProtocol.Tcp),
            TcpFlags = new TcpFlagsMatch(TcpFlags.Fin | TcpFlags.Syn, TcpFlags.Fin | TcpFlags.Syn, true) } },
        { "protocol: icmp, icmp-type: echo-request", new Match { Protocol = new ProtocolMatch(IpProtocol.Icmp), IcmpType = RangeMatch.Exactly(8) } },
        { "protocol: icmpv6, icmp-type: echo-request", new Match { Protocol = new ProtocolMatch(IpProtocol.Icmpv6), IcmpType = RangeMatch.Exactly(128) } },
        { "protocol: icmpv6, icmp-type: \"!neighbour-solicitation\"", new Match { Protocol = new ProtocolMatch(IpProtocol.Icmpv6), IcmpType = RangeMatch.Exactly(135, true) } },
        { "protocol: icmp, icmp-type: 3, icmp-code: 0-4", new Match { Protocol = new ProtocolMatch(IpProtocol.Icmp), IcmpType = RangeMatch.Exactly(3),
            IcmpCode = new RangeMatch(0, 4) } },
        { "protocol: icmp, icmp-type: { not: 13-14 }", new Match { Protocol = new ProtocolMatch(IpProtocol.Icmp), IcmpType = new RangeMatch(13, 14, true) } },
        { "length: 1500", new Match { Length = RangeMatch.Exactly(1500) } },
        { "length: \"!0-99\"", new Match { Length = new RangeMatch(0, 99, true) } },
        { "ttl: 64", new Match { Ttl = RangeMatch.Exactly(64) } },
        { "ttl: 1-5", new Match { Ttl = new RangeMatch(1, 5) } },
        { "hop-limit: \"!255\"", new Match { HopLimit = RangeMatch.Exactly(255, true) } },
        { "dscp: 46", new Match { Dscp = RangeMatch.Exactly(46) } },
        { "dscp: { not: 8-15 }", new Match { Dscp = new RangeMatch(8, 15, true) } },
        { "fragment: first", new Match { Fragment = new FragmentMatch(FragmentKind.First) } },
        { "fragment: \"!not-first\"", new Match { Fragment = new FragmentMatch(FragmentKind.NotFirst, true) } },
        { "mark: 0x10", new Match { Mark = new MarkMatch(0x10) } },
        { "mark: 16", new Match { Mark = new MarkMatch(16) } },
        { "mark: 0x10/0xff", new Match { Mark = new MarkMatch(0x10, 0xff) } },
        { "mark: \"!0x0000000F/0x0F\"", new Match { Mark = new MarkMatch(0x0f, 0x0f, true) } },
        { "ct-state: established", new Match { CtState = new CtStateMatch(CtStates.Established) } },
        { "ct-state: [established, related]", new Match { CtState = new CtStateMatch(CtStates.Established | CtStates.Related) } },
        { "ct-state: \"ESTABLISHED,RELATED\"", new Match { CtState = new CtStateMatch(CtStates.Established | CtStates.Related) } },
        { "ct-state: \"!new\"", new Match { CtState = new CtStateMatch(CtStates.New, negated: true) } },
        { "ct-state: { not: [new, invalid] }", new Match { CtState = new CtStateMatch(CtStates.New | CtStates.Invalid, negated: true) } },
        { "ct-direction: reply", new Match { CtDirection = CtDirection.Reply } },
        { "ct-direction: ORIGINAL", new Match { CtDirection = CtDirection.Original } },
        { "limit: 5/second", new Match { Limit = new LimitMatch(5, RateUnit.Second) } },
        { "limit: 3/minute", new Match { Limit = new LimitMatch(3, RateUnit.Minute) } },
        { "limit: { rate: 1/day, burst: 10 }", new Match { Limit = new LimitMatch(1, RateUnit.Day, 10) } },
        { "limit: { rate: 20/hour }", new Match { Limit = new LimitMatch(20, RateUnit.Hour) } },
    };

    [Theory]
    [MemberData(nameof(Forms))]
    public void Every_value_form_reads_into_its_condition(string match, Match expected) => Assert.Equal(expected, MatchOf(match));

    [Fact]
    public void Every_match_key_of_the_reader_has_a_form_here() =>
        Assert.All(YamlRulesetReader.MatchKeys, key => Assert.Contains(Forms, row => ((string)row[0]).Contains(key + ": ", StringComparison.Ordinal)));

    [Fact]
    public void Every_key_at_once_reads_in_one_match()
    {
        var match = MatchOf("family: ipv4, in-interface: eth0, out-interface: \"!eth1\", source: 10.0.0.0/8, destination: \"@blocklist\", "
            + "protocol: tcp, source-port: \"!0-1023\", destination-port: [80, 443], tcp-flags: syn, length: 40-1500, fragment: \"!not-first\", "
            + "dscp: 0, ttl: 1-64, mark: 0x1/0x1, ct-state: [established, related], ct-direction: reply, limit: 100/second");
        Assert.Equal(IpFamily.Ipv4, match.ImpliedFamily);
        Assert.Equal("family ipv4 in-interface eth0 out-interface !eth1 source 10.0.0.0/8 destination @blocklist protocol tcp source-port !0-1023 "
            + "destination-port [80, 443] tcp-flags syn length 40-1500 fragment !not-first dscp 0 ttl 1-64 mark 0x1/0x1 ct-state established,related "
            + "ct-direction reply limit 100/second burst 5",
            match.ToString());
    }

    // ---- Actions -----------------------------------------------------------------------------------------------------

    [Theory]
    [InlineData("accept", "accept")]
    [InlineData("drop", "drop")]
    [InlineData("reject", "reject")]
    [InlineData("continue", "continue")]
    [InlineData("return", "return")]
    [InlineData("log", "log")]
    [InlineData("{ reject: tcp-reset }", "reject with tcp-reset")]
    [InlineData("{ reject: icmp-port-unreachable }", "reject with port-unreachable")]
    [InlineData("{ reject: admin-prohibited }", "reject with admin-prohibited")]
    [InlineData("{ log: \"IN: \" }", "log 'IN: '")]
    [InlineData("{ log: \"\" }", "log")]
    [InlineData("{ jump: WEB }", "jump: WEB")]
    [InlineData("{ goto: WEB }", "goto: WEB")]
    public void Every_action_reads_into_its_verdict(string action, string verdict)
    {
        var ruleset = Read(Header + $"      - action: {action}\n  - name: WEB\n    rules: []\n");
        Assert.Equal(verdict, Assert.Single(Assert.Single(ruleset.Chains).Rules).Verdict.ToString());
    }

    [Fact]
    public void An_action_mapping_with_two_keys_is_refused_at_the_second() =>
        Fails(Header + "      - action: { jump: WEB, goto: WEB }\n", RuleLine, 30, "an action mapping has exactly one key");

    [Fact]
    public void An_unknown_action_key_is_refused_at_the_key() =>
        Fails(Header + "      - action: { call: WEB }\n", RuleLine, 19, "'call' is not a action key (expected one of: reject, log, jump, goto)");

    [Fact]
    public void An_unknown_reject_kind_is_refused_at_the_value() =>
        Fails(Header + "      - action: { reject: politely }\n", RuleLine, 27, "reject: 'politely' is not a reject kind");

    [Fact]
    public void A_log_prefix_with_a_control_character_is_refused_at_the_value() =>
        Fails(Header + "      - action: { log: \"a\\u0007b\" }\n", RuleLine, 24, "a log prefix is at most 64 printable characters");

    // ---- Sets --------------------------------------------------------------------------------------------------------

    [Fact]
    public void Sets_of_every_type_read_with_their_elements()
    {
        var ruleset = Read("""
            bpfilter: 1
            name: demo
            sets:
              a4: { type: ipv4-addr, elements: [10.0.0.1, 10.0.0.2, 10.0.0.1] }
              n4: { type: ipv4-net, elements: [10.0.0.0/8] }
              a6: { type: ipv6-addr, elements: ["::1"] }
              n6:
                type: ipv6-net
                elements:
                  - "2001:db8::/32"
              p: { type: port, elements: [22, "80", 8000-8080] }
              empty: { type: port }
            chains:
              - { name: IN, hook: nf-input }
            """);
        Assert.Equal(["a4", "n4", "a6", "n6", "p", "empty"], ruleset.Sets.Select(s => s.Name));
        Assert.Equal("10.0.0.1, 10.0.0.2", ruleset.FindSet("a4")!.Elements.ToString());
        Assert.Equal(SetType.Ipv6Network, ruleset.FindSet("n6")!.Type);
        Assert.Equal("22, 80, 8000-8080", ruleset.FindSet("p")!.Elements.ToString());
        Assert.Empty(ruleset.FindSet("empty")!.Elements);
    }

    private const string SetsHead = "bpfilter: 1\nname: demo\nsets:\n";
    private const string SetsTail = "chains:\n  - { name: IN, hook: nf-input }\n";

    [Theory]
    [InlineData("  a: { type: ipv4-addr, elements: [10.0.0.0/8] }\n", 4, 36, "'10.0.0.0/8' is not an element of set 'a' of type ipv4-addr")]
    [InlineData("  a: { type: port, elements: [22, 70000] }\n", 4, 35, "set 'a': '70000' is not a port or port range")]
    [InlineData("  a: { type: ipv6-net, elements: [10.0.0.0/8] }\n", 4, 35, "'10.0.0.0/8' is not an element of set 'a' of type ipv6-net")]
    [InlineData("  a: { type: ipv5-net }\n", 4, 14, "'ipv5-net' is not a set type: use ipv4-addr, ipv4-net, ipv6-addr, ipv6-net, port")]
    [InlineData("  a: { elements: [] }\n", 4, 6, "set 'a' has no 'type' key")]
    [InlineData("  a: { type: port, members: [] }\n", 4, 20, "'members' is not a set key (expected one of: type, elements)")]
    [InlineData("  9a: { type: port }\n", 4, 3, "'9a' is not a set name")]
    [InlineData("  a: [10.0.0.1]\n", 4, 6, "set 'a' must be a mapping of keys to values, not a list")]
    [InlineData("  a: { type: port, elements: 22 }\n", 4, 30, "elements must be a list, not '22'")]
    public void A_bad_set_is_refused_at_the_key_or_value(string set, long line, long column, string reason) =>
        Fails(SetsHead + set + SetsTail, line, column, reason);

    [Fact]
    public void A_set_of_more_elements_than_the_limit_is_refused_at_the_first_one_too_many()
    {
        var elements = string.Join(", ", Enumerable.Range(0, NamedSet.MaxElements + 1).Select(i => $"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}"));
        var e = Assert.Throws<RulesetFormatException>(() => Read(SetsHead + "  a: { type: ipv4-addr, elements: [" + elements + "] }\n" + SetsTail));
        Assert.Contains($"set 'a' has more than {NamedSet.MaxElements} elements, the limit per set; see about_Bpfilter_Limits", e.Reason);
        Assert.Equal((4L, 36L + elements.IndexOf("10.1.0.0", StringComparison.Ordinal)), (e.Line, e.Column));
    }

    [Theory]
    [InlineData("source: \"@nosuch\"", "\"@nosuch\"", "chain 'INPUT' rule 1: there is no set 'nosuch'")]
    [InlineData("source: \"@ports\"", "\"@ports\"", "source needs a set of addresses, and 'ports' is a set of port")]
    [InlineData("protocol: tcp, destination-port: \"!@blocklist\"", "\"!@blocklist\"", "destination-port needs a set of ports, and 'blocklist' is a set of ipv4-net")]
    [InlineData("source: 10.0.0.1, destination: \"@v6hosts\"", "\"@v6hosts\"", "the rule is ipv4, but set 'v6hosts' holds ipv6-addr")]
    [InlineData("source: \"@9\"", "\"@9\"", "source: '9' is not a set name")]
    public void A_set_reference_that_does_not_fit_is_refused_at_the_value(string match, string at, string reason) => MatchFails(match, at, reason);

    // ---- User chains -------------------------------------------------------------------------------------------------

    private const string Chains = "bpfilter: 1\nname: demo\nchains:\n  - name: IN\n    hook: nf-input\n    rules:\n";

    [Fact]
    public void A_chain_without_a_hook_is_a_user_chain()
    {
        var ruleset = Read(Chains + "      - action: { jump: A }\n  - name: A\n    rules:\n      - action: { goto: B }\n  - name: B\n");
        Assert.Equal(["IN"], ruleset.Chains.Select(c => c.Name));
        Assert.Equal(["A", "B"], ruleset.UserChains.Select(c => c.Name));
        Assert.Equal(Verdict.Goto("B"), Assert.Single(ruleset.UserChains[0].Rules).Verdict);
        Assert.Empty(ruleset.UserChains[1].Rules);
    }

    [Theory]
    [InlineData("policy: drop", "chain 'A' has no hook, so it is a user chain, run only by a jump or goto: it takes no 'policy'")]
    [InlineData("interface: eth0", "chain 'A' has no hook, so it is a user chain, run only by a jump or goto: it takes no 'interface'")]
    [InlineData("priority: 5", "it takes no 'priority' (give it a hook to attach it)")]
    [InlineData("hooks: nf-input", "'hooks' is not a chain key (expected one of: name, hook,")]
    public void A_user_chain_refuses_the_keys_of_hooked_chains_at_the_key(string key, string reason) =>
        Fails(Chains + "      - action: drop\n  - name: A\n    " + key + "\n", 9, 5, reason);

    [Fact]
    public void A_ruleset_of_user_chains_alone_is_refused() =>
        Fails("bpfilter: 1\nname: demo\nchains:\n  - name: A\n", 4, 3, "ruleset 'demo' has no chain with a hook");

    [Fact]
    public void A_jump_to_a_chain_that_does_not_exist_is_refused_at_the_action() =>
        Fails(Chains + "      - action: drop\n      - action: { jump: NOPE }\n", 8, 17, "chain 'IN' rule 2: there is no chain 'NOPE' to jump to");

    [Fact]
    public void A_goto_to_a_hooked_chain_is_refused_at_the_action() =>
        Fails(Chains + "      - action: { goto: IN2 }\n  - { name: IN2, hook: nf-output }\n", 7, 17, "'IN2' is attached at a hook; a goto can only go to a chain without a hook");

    [Fact]
    public void A_loop_of_jumps_is_refused_at_the_rule_that_closes_it()
    {
        var yaml = Chains + "      - action: { jump: A }\n  - name: A\n    rules:\n      - action: { jump: B }\n"
            + "  - name: B\n    rules:\n      - action: accept\n      - action: { goto: A }\n";
        Fails(yaml, 14, 17, "the chains jump in a loop: A -> B -> A");
    }

    [Fact]
    public void A_chain_that_jumps_to_itself_is_refused_at_the_jump() =>
        Fails(Chains + "      - action: { jump: A }\n  - name: A\n    rules:\n      - name: again\n        action: { jump: A }\n", 11, 17, "the chains jump in a loop: A -> A");

    [Fact]
    public void A_user_chain_named_like_a_hooked_one_is_refused_at_its_name() =>
        Fails(Chains + "      - action: drop\n  - name: IN\n", 8, 11, "ruleset 'demo' has two chains named 'IN'");

    [Fact]
    public void Two_chains_at_one_attach_point_are_refused_at_the_second() =>
        Fails(Chains + "      - action: drop\n  - name: IN2\n    hook: nf-input\n", 8, 11, "chains 'IN' and 'IN2' both attach at nf-input");

    [Fact]
    public void Duplicate_rule_names_in_a_user_chain_are_refused_at_the_second_name() =>
        Fails(Chains + "      - action: { jump: A }\n  - name: A\n    rules:\n      - { name: x, action: drop }\n      - { name: x, action: drop }\n",
            11, 17, "chain 'A' has two rules named 'x'");

    // ---- Negation, lists and sets: the ambiguous spellings -----------------------------------------------------------

    [Theory]
    [InlineData("source: !10.0.0.0/8", "!10.0.0.0/8", "source: YAML reads an unquoted '!' as the start of a tag, not as a negation: write \"!10.0.0.0/8\" in quotes")]
    [InlineData("protocol: ! tcp", "! tcp", "write \"!tcp\" in quotes")]
    [InlineData("source: [\"!10.0.0.1\", 10.0.0.2]", "\"!10.0.0.1\"", "source: a '!' inside a list is ambiguous: negate the whole list, as source: { not: [...] }")]
    [InlineData("source: [\"@blocklist\"]", "\"@blocklist\"", "source: a set stands alone, not in a list: write source: \"@blocklist\"")]
    [InlineData("source: { not: \"!10.0.0.1\" }", "\"!10.0.0.1\"", "source: a '!' inside { not: ... } negates twice")]
    [InlineData("source: \"!!10.0.0.1\"", "\"!!10.0.0.1\"", "source: '!!' negates twice")]
    [InlineData("source: { not: 10.0.0.1, also: 1 }", "also", "'also' is not a key of source: a mapping here negates")]
    [InlineData("source: {}", "{}", "source: an empty mapping is no condition")]
    [InlineData("source: []", "[]", "source: an address list needs at least one address")]
    [InlineData("family: \"!ipv4\"", "\"!ipv4\"", "family cannot be negated")]
    [InlineData("limit: \"!5/second\"", "\"!5/second\"", "limit cannot be negated")]
    [InlineData("protocol: [tcp, udp]", "[tcp", "protocol must be a single value, not a list")]
    [InlineData("in-interface: [eth0]", "[eth0", "in-interface must be a single value, not a list")]
    [InlineData("protocol: tcp, tcp-flags: { not: { not: syn } }", "{ not: syn", "tcp-flags: { not: { not: ... } } negates twice")]
    public void Ambiguous_negations_and_lists_are_refused_where_they_stand(string match, string at, string reason) => MatchFails(match, at, reason);

    [Fact]
    public void An_unquoted_set_reference_is_a_YAML_error_that_says_to_quote_it()
    {
        var e = Assert.Throws<RulesetFormatException>(() => Read(Header + "      - { match: { source: @blocklist }, action: drop }\n"));
        Assert.Contains("A value that starts with @ or ` must be in quotes, as a set is: \"@blocklist\".", e.Reason);
        Assert.Equal(RuleLine, e.Line);
    }

    // ---- Bad values --------------------------------------------------------------------------------------------------

    [Theory]
    [InlineData("family: inet", "inet", "family: 'inet' is not ipv4 or ipv6")]
    [InlineData("in-interface: \"a/b\"", "\"a/b\"", "in-interface: 'a/b' is not an interface name")]
    [InlineData("source: [10.0.0.1, \"2001:db8::1\"]", "\"2001:db8::1\"", "source: an address list mixes IPv4 and IPv6")]
    [InlineData("source: { not: [10.0.0.1, 10.0.0.256] }", "10.0.0.256", "source: '10.0.0.256' is not an IPv4 address")]
    [InlineData("protocol: \"!bogus\"", "\"!bogus\"", "protocol: 'bogus' is not a protocol")]
    [InlineData("protocol: tcp, destination-port: [80, 70000]", "70000", "destination-port: '70000' is not a port or port range")]
    [InlineData("protocol: tcp, destination-port: 2000-1000", "2000-1000", "destination-port: the range 2000-1000 ends before it starts")]
    [InlineData("protocol: \"!tcp\", destination-port: 80", "80 }", "destination-port needs protocol tcp or udp, not !tcp")]
    [InlineData("protocol: tcp, tcp-flags: \"SYN,ACK\"", "\"SYN,ACK\"", "tcp-flags: 'SYN,ACK' is not a TCP flags condition")]
    [InlineData("protocol: tcp, tcp-flags: \"SYN,BOGUS SYN\"", "\"SYN,BOGUS", "tcp-flags: 'BOGUS' is not a TCP flag")]
    [InlineData("protocol: tcp, tcp-flags: { mask: [SYN], set: [SYN, ACK] }", "[SYN, ACK]", "tcp-flags: ACK must be set but is not in the mask SYN")]
    [InlineData("protocol: tcp, tcp-flags: { mask: [SYN] }", "{ mask", "tcp-flags has no 'set' key")]
    [InlineData("protocol: tcp, tcp-flags: { mask: [SYN], set: [], syn: 1 }", "syn: 1", "'syn' is not a tcp-flags key")]
    [InlineData("protocol: udp, tcp-flags: syn", "syn }", "tcp-flags needs protocol tcp")]
    [InlineData("icmp-type: echo-request", "echo-request", "icmp-type needs protocol icmp or icmpv6")]
    [InlineData("protocol: icmp, icmp-type: packet-too-big", "packet-too-big", "icmp-type: 'packet-too-big' is not an ICMP type")]
    [InlineData("protocol: icmpv6, icmp-type: 256", "256", "icmp-type: '256' is not a value or range from 0 to 255")]
    [InlineData("protocol: tcp, icmp-code: 1", "1 }", "icmp-code needs protocol icmp or icmpv6")]
    [InlineData("length: 70000", "70000", "length: '70000' is not a value or range from 0 to 65575")]
    [InlineData("dscp: 64", "64", "dscp: '64' is not a value or range from 0 to 63")]
    [InlineData("ttl: 10-1", "10-1", "ttl: the range '10-1' ends before it starts")]
    [InlineData("source: \"2001:db8::1\", ttl: 64", "64 }", "source makes the rule ipv6, but ttl makes it ipv4")]
    [InlineData("family: ipv4, hop-limit: 1", "1 }", "family makes the rule ipv4, but hop-limit makes it ipv6")]
    [InlineData("fragment: middle", "middle", "fragment: 'middle' is not first or not-first")]
    [InlineData("mark: 0x1g", "0x1g", "mark: '0x1g' is not a mark")]
    [InlineData("mark: 0x100000000", "0x100000000", "mark: '0x100000000' is not a mark")]
    [InlineData("mark: 1/", "1/", "mark: '1/' is not a mark")]
    [InlineData("mark: 0x100/0xff", "0x100/0xff", "mark: in '0x100/0xff' the value has bits outside the mask, so no packet could match")]
    [InlineData("ct-state: [new, bogus]", "bogus", "ct-state: 'bogus' is not a connection state")]
    [InlineData("ct-state: SNAT", "SNAT", "the NAT states are not supported")]
    [InlineData("ct-state: [new, \"!invalid\"]", "\"!invalid\"", "ct-state: a '!' inside a list is ambiguous")]
    [InlineData("ct-state: !new", "!new", "write \"!new\" in quotes")]
    [InlineData("ct-direction: back", "back", "ct-direction: 'back' is not a connection direction")]
    [InlineData("ct-direction: \"!reply\"", "\"!reply\"", "ct-direction cannot be negated")]
    [InlineData("limit: 5/fortnight", "5/fortnight", "limit: '5/fortnight' is not a rate")]
    [InlineData("limit: 0/second", "0/second", "limit: a limit's rate is 1 to 1000000 packets per unit")]
    [InlineData("limit: { rate: 5/second, burst: 0 }", "0 }", "limit: a limit's burst is 1 to 1000000 packets")]
    [InlineData("limit: { rate: 5/second, burst: -1 }", "-1", "burst: '-1' is not a whole number from 1 to 1000000")]
    [InlineData("limit: { burst: 5 }", "{ burst", "limit has no 'rate' key")]
    [InlineData("limit: { not: 5/second }", "not", "'not' is not a limit key (expected one of: rate, burst)")]
    public void A_bad_value_is_refused_at_it(string match, string at, string reason) => MatchFails(match, at, reason);

    [Fact]
    public void The_reference_topic_names_every_key_and_word_the_reader_knows()
    {
        var topic = File.ReadAllText(Path.Combine(Samples.Root, "en-US", "about_Bpfilter_Rulesets.help.txt"));
        var words = YamlRulesetReader.RulesetKeys.Concat(YamlRulesetReader.SetKeys).Concat(YamlRulesetReader.ChainKeys)
            .Concat(YamlRulesetReader.RuleKeys).Concat(YamlRulesetReader.MatchKeys).Concat(YamlRulesetReader.TcpFlagsKeys)
            .Concat(YamlRulesetReader.LimitKeys).Concat(YamlRulesetReader.ActionWords).Concat(YamlRulesetReader.ActionKeys)
            .Append(YamlRulesetReader.NotKey).Concat(HookNames.Names).Concat(SetTypeNames.Names).Concat(RejectWithNames.Names)
            .Concat(IcmpTypes.Names).Concat(IpProtocol.KnownNames);
        Assert.All(words, word => Assert.Matches($@"(?<![\w-]){Regex.Escape(word)}(?![\w-])", topic));
        // Each match key has its own entry in the table of match keys.
        Assert.All(YamlRulesetReader.MatchKeys, key => Assert.Matches($@"(?m)^        {Regex.Escape(key)} ", topic));
    }

    [Fact]
    public void The_deepest_form_reads_within_the_nesting_limit() =>
        Assert.True(MatchOf("protocol: tcp, tcp-flags: { not: { mask: [SYN, ACK], set: [SYN] } }").TcpFlags!.Negated);
}
