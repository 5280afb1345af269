using Bpfilter.Engine.Formats.Iptables;
using Bpfilter.Engine.Rules;
using Xunit;

namespace Bpfilter.Engine.Tests;

/// <summary>iptables rule specifications: what each option reads into, what is refused and where, and writing back.</summary>
public sealed class IptablesRuleSpecTests
{
    private static List<string> Args(string line) => IptablesArguments.Split(line).Select(a => a.Text).ToList();

    private static Rule Read(string spec, IpFamily family = IpFamily.Ipv4) => IptablesRuleSpec.Parse(Args("-A FORWARD " + spec), family).Rule;

    private static Match M(string spec, IpFamily family = IpFamily.Ipv4) => Read(spec, family).Match;

    /// <summary>Asserts the spec fails at the argument holding <paramref name="at"/> (counted within the spec) with a reason containing <paramref name="reasonPart"/>.</summary>
    private static void Fails(string spec, int at, string reasonPart, IpFamily family = IpFamily.Ipv4)
    {
        var e = Assert.Throws<IptablesRuleSpecException>(() => Read(spec, family));
        Assert.Contains(reasonPart, e.Reason);
        Assert.Equal(at + 2, e.ArgumentIndex);
        Assert.Equal("IptablesRuleInvalid", e.ErrorId);
    }

    private static IpPrefix P(string text) => IpPrefix.Parse(text);

    [Fact]
    public void Split_reads_quotes_and_escapes_as_iptables_restore_does()
    {
        var args = IptablesArguments.Split("-A INPUT  -m comment --comment \"a \\\"b\\\\ c\" -j\tACCEPT x\\y 'q'");
        Assert.Equal(["-A", "INPUT", "-m", "comment", "--comment", "a \"b\\ c", "-j", "ACCEPT", "x\\y", "'q'"], args.Select(a => a.Text));
        Assert.Equal([1, 4, 11, 14, 22, 32, 44, 47, 54, 58], args.Select(a => a.Column));
        Assert.Equal([""], IptablesArguments.Split("\"\"").Select(a => a.Text));
        var e = Assert.Throws<IptablesRuleSpecException>(() => IptablesArguments.Split("-A INPUT --comment \"open"));
        Assert.Equal(20, e.Column);
    }

    [Theory]
    [InlineData("ssh")]
    [InlineData("ssh in")]
    [InlineData("say \"hi\" \\ 'there'")]
    [InlineData("")]
    [InlineData("café # 1")]
    public void Join_quotes_what_split_would_break(string value)
    {
        var line = IptablesArguments.Join(["--comment", value, "10.0.0.0/8"]);
        Assert.Equal(["--comment", value, "10.0.0.0/8"], IptablesArguments.Split(line).Select(a => a.Text));
        if (value == "ssh") Assert.Equal("--comment ssh 10.0.0.0/8", line);
    }

    [Fact]
    public void Every_rule_is_limited_to_the_family_of_its_tool()
    {
        Assert.Equal(IpFamily.Ipv4, M("-p tcp --dport 22").Family);
        Assert.Equal(IpFamily.Ipv6, M("-p tcp --dport 22", IpFamily.Ipv6).Family);
        Assert.Equal(new IptablesRule("INPUT", new Rule(null, new Match { Family = IpFamily.Ipv4 }, Verdict.Continue)), IptablesRuleSpec.Parse(["-A", "INPUT"], IpFamily.Ipv4));
    }

    [Fact]
    public void Addresses_read_as_prefixes_with_host_bits_cleared_and_dotted_masks()
    {
        Assert.Equal(new AddressMatch([P("10.0.0.0/8")]), M("-s 10.0.0.1/8").Source);
        Assert.Equal(new AddressMatch([P("10.0.0.0/8")], negated: true), M("! --source 10.0.0.0/255.0.0.0").Source);
        Assert.Equal(new AddressMatch([P("192.0.2.7")]), M("-d 192.0.2.7/32").Destination);
        Assert.Equal(new AddressMatch([P("10.0.0.0/8"), P("192.168.1.1")]), M("--dst 10.0.0.0/8,192.168.1.1 -j DROP").Destination);
        Assert.Equal(new AddressMatch([P("2001:db8::/32")]), M("-s 2001:db8::1/32", IpFamily.Ipv6).Source);
        Assert.Null(M("-s 0.0.0.0/0").Source);
        Assert.Null(M("-d ::/0", IpFamily.Ipv6).Destination);
    }

    [Theory]
    [InlineData("-s 1.2.3", 1, "not an IPv4 address")]
    [InlineData("-s example.com", 1, "host names")]
    [InlineData("-s 2001:db8::1", 1, "is an IPv6 address")]
    [InlineData("-s 10.0.0.0/255.0.255.0", 1, "netmask of leading ones")]
    [InlineData("-s 10.0.0.0/33", 1, "prefix length must be 0 to 32")]
    [InlineData("-s 10.0.0.1,", 1, "empty item")]
    [InlineData("! -s 10.0.0.1,10.0.0.2", 2, "cannot negate a list")]
    [InlineData("! -s 0.0.0.0/0", 2, "never matches")]
    [InlineData("-s ! 10.0.0.1", 1, "'!' goes before the option")]
    [InlineData("-s 10.0.0.1 --src 10.0.0.2", 2, "source is already given at argument 3")]
    [InlineData("-s 10.0.0.1 -m iprange --src-range 10.0.0.1-10.0.0.9", 4, "source is already given")]
    public void Bad_addresses_are_refused_at_their_argument(string spec, int at, string reason) => Fails(spec, at, reason);

    [Fact]
    public void Comma_lists_are_refused_where_iptables_one_rule_per_address_would_differ()
    {
        Fails("-s 10.0.0.1,10.0.0.2 -m limit --limit 1/s -j ACCEPT", 1, "own -m limit bucket");
        Fails("-s 10.0.0.0/8,10.1.0.0/16 -j LOG", 1, "overlap");
        Fails("-d 10.0.0.0/8,10.0.0.0/8 -j SERVICES", 1, "jump twice");
        // Disjoint addresses, or verdicts that decide at the first match, mean the same either way.
        Assert.Equal(2, M("-s 10.0.0.0/8,11.0.0.0/8 -j LOG").Source!.Prefixes.Count);
        Assert.Equal(2, M("-s 10.0.0.0/8,10.1.0.0/16 -j ACCEPT").Source!.Prefixes.Count);
    }

    [Fact]
    public void Ranges_become_the_fewest_prefixes()
    {
        Assert.Equal(new AddressMatch([P("10.0.0.1"), P("10.0.0.2/31"), P("10.0.0.4/31")]), M("-m iprange --src-range 10.0.0.1-10.0.0.5").Source);
        Assert.Equal(new AddressMatch([P("10.0.0.0/23")], negated: true), M("-m iprange ! --dst-range 10.0.0.0-10.0.1.255").Destination);
        // Every address of the family is no condition: the rule is limited to its family already.
        Assert.Null(M("-m iprange --src-range 0.0.0.0-255.255.255.255").Source);
        Fails("-m iprange ! --src-range ::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 4, "never matches", IpFamily.Ipv6);
        Assert.Equal(new AddressMatch([P("2001:db8::ffff"), P("2001:db8::1:0/112"), P("2001:db8::2:0")]),
            M("-m iprange --src-range 2001:db8::ffff-2001:db8::2:0", IpFamily.Ipv6).Source);
        Fails("-m iprange --src-range 10.0.0.9-10.0.0.1", 3, "ends before it starts");
        Fails("-m iprange --src-range 10.0.0.0/8-10.0.0.9", 3, "not a range");
        Fails("-m iprange", 1, "-m iprange needs one of its options");
    }

    [Fact]
    public void Every_range_round_trips_through_its_prefixes()
    {
        var random = new Random(7);
        for (int i = 0; i < 2000; i++)
        {
            var a = (uint)random.NextInt64(0, 1L << 32);
            var b = (uint)Math.Min(uint.MaxValue, a + (ulong)random.NextInt64(0, 1L << random.Next(1, 33)));
            var prefixes = AddressRanges.ToPrefixes(IpFamily.Ipv4, a, b);
            Assert.Equal(a, (uint)prefixes[0].Address);
            Assert.Equal(b, (uint)(prefixes[^1].Address | AddressRanges.HostMask(32, prefixes[^1].Length)));
            for (int j = 1; j < prefixes.Count; j++)
                Assert.Equal(prefixes[j - 1].Address + AddressRanges.HostMask(32, prefixes[j - 1].Length) + 1, prefixes[j].Address);
            Assert.True(prefixes.Count <= 62);
            var range = AddressRanges.AsRange(prefixes);
            if (prefixes.Count > 1) Assert.Equal(((UInt128)a, (UInt128)b), range);
            else Assert.Null(range);
        }
    }

    [Fact]
    public void Interfaces_match_whole_names_only()
    {
        Assert.Equal(new InterfaceMatch("eth0"), M("-i eth0").InInterface);
        Assert.Equal(new InterfaceMatch("wan0", negated: true), M("! --out-interface wan0").OutInterface);
        Fails("-i eth+", 1, "wildcard");
        Fails("-i abcdefghijklmnop", 1, "interface name");
        Fails("-i eth0 -i eth1", 2, "in-interface is already given");
        var noOut = Assert.Throws<IptablesRuleSpecException>(() => IptablesRuleSpec.Parse(Args("-A INPUT -p tcp -o eth0"), IpFamily.Ipv4));
        Assert.Equal((4, "-o"), (noOut.ArgumentIndex, noOut.Option));
        Assert.Contains("iptables refuses -o there", noOut.Reason);
        Assert.Equal(3, Assert.Throws<IptablesRuleSpecException>(() => IptablesRuleSpec.Parse(Args("-A OUTPUT ! --in-interface eth0"), IpFamily.Ipv4)).ArgumentIndex);
        var written = Assert.Throws<BpfilterException>(() => IptablesRuleSpec.Format(new IptablesRule("OUTPUT", new Rule(null, new Match { InInterface = new("eth0") }, Verdict.Drop)), IpFamily.Ipv4));
        Assert.Contains("iptables refuses -i there", written.Message);
    }

    [Fact]
    public void Protocols_read_by_name_or_number_and_all_means_every_protocol()
    {
        Assert.Equal(new ProtocolMatch(IpProtocol.Tcp), M("-p tcp").Protocol);
        Assert.Equal(new ProtocolMatch(new IpProtocol(47), true), M("! -p gre").Protocol);
        Assert.Equal(new ProtocolMatch(new IpProtocol(132)), M("--protocol 132").Protocol);
        Assert.Equal(new ProtocolMatch(IpProtocol.Icmpv6), M("-p ipv6-icmp", IpFamily.Ipv6).Protocol);
        Assert.Equal(new ProtocolMatch(IpProtocol.Icmpv6), M("-p icmpv6", IpFamily.Ipv6).Protocol);
        Assert.Equal(new ProtocolMatch(new IpProtocol(136)), M("-p udplite").Protocol);
        Assert.Null(M("-p all").Protocol);
        Assert.Null(M("-p 0").Protocol);
        Fails("! -p all", 2, "never matches");
        Fails("-p bogus", 1, "not a protocol");
        Fails("-p tcp -p udp", 2, "protocol is given twice");
    }

    [Fact]
    public void Ports_read_with_the_protocols_module_implied_or_named()
    {
        Assert.Equal(PortMatch.Single(22), M("-p tcp --dport 22").DestinationPort);
        Assert.Equal(PortMatch.Single(22), M("-p tcp -m tcp --destination-port 22").DestinationPort);
        Assert.Equal(new PortMatch([new PortRange(1024, 65535)], negated: true), M("-p udp ! --sport 1024:").SourcePort);
        Assert.Equal(new PortMatch([new PortRange(0, 100)]), M("-p udp -m udp --source-port :100").SourcePort);
        Assert.Equal(PortMatch.Single(8), M("-p tcp --dport 010").DestinationPort);
        Fails("--dport 22 -p tcp", 0, "needs -p tcp or -p udp before it");
        Fails("! -p tcp --dport 22", 3, "not a negated protocol");
        Fails("-p tcp --dport nosuchservice", 3, "or a service name /etc/services gives TCP");
        if (IptablesNameLookup.System.TryParseService("domain", 17, out var domain))
            Assert.Equal(PortMatch.Single(domain), M("-p udp --dport domain").DestinationPort);
        Fails("-p tcp --dport 90:80", 3, "ends before it starts");
        Fails("-p tcp --dport 70000", 3, "0 to 65535");
        Fails("-p tcp --dport 1 --dport 2", 4, "given twice");
        Fails("-p tcp -m udp --dport 1", 3, "-m udp needs -p udp");
        Fails("-p tcp --dport 1 -m multiport --dports 2,3", 6, "destination-port is already given");
    }

    [Fact]
    public void Multiport_reads_lists_and_refuses_ports_that_could_be_either()
    {
        Assert.Equal(new PortMatch([new PortRange(80, 80), new PortRange(443, 443), new PortRange(8000, 8080)]),
            M("-p tcp -m multiport --dports 80,443,8000:8080").DestinationPort);
        Assert.Equal(new PortMatch([new PortRange(1, 1), new PortRange(2, 2)], negated: true), M("-p udp -m multiport ! --source-ports 1,2").SourcePort);
        var neither = M("-p udp -m multiport ! --ports 0:1023");
        Assert.Equal(new PortMatch([new PortRange(0, 1023)], negated: true), neither.SourcePort);
        Assert.Equal(neither.SourcePort, neither.DestinationPort);
        var both = M("-p tcp -m multiport --sports 1,2 -m multiport --dports 3,4");
        Assert.Equal((2, 2), (both.SourcePort!.Ranges.Count, both.DestinationPort!.Ranges.Count));
        Fails("-p tcp -m multiport --ports 1,2", 4, "write two rules");
        Fails("-p tcp -m multiport --sports 1 --dports 2", 6, "cannot share one -m multiport");
        Fails("-p tcp -m multiport --dports 1,:5", 5, "needs both ends");
        Fails("-p icmp -m multiport --dports 1", 3, "-m multiport needs -p tcp or -p udp");
        Fails("-m multiport --dports 1", 1, "-m multiport needs -p tcp or -p udp");
    }

    [Fact]
    public void Tcp_flags_use_iptables_names_where_all_is_six_flags()
    {
        Assert.Equal(TcpFlagsMatch.Syn, M("-p tcp --syn").TcpFlags);
        Assert.Equal(new TcpFlagsMatch(TcpFlagsMatch.Syn.Mask, TcpFlags.Syn, true), M("-p tcp ! --syn").TcpFlags);
        Assert.Equal(new TcpFlagsMatch(TcpFlags.Fin | TcpFlags.Syn | TcpFlags.Rst | TcpFlags.Psh | TcpFlags.Ack | TcpFlags.Urg, TcpFlags.None),
            M("-p tcp --tcp-flags ALL NONE").TcpFlags);
        Assert.Equal(new TcpFlagsMatch(TcpFlags.Syn | TcpFlags.Rst, TcpFlags.Syn | TcpFlags.Rst, true), M("-p tcp -m tcp ! --tcp-flags syn,rst SYN,RST").TcpFlags);
        Fails("-p tcp --tcp-flags ECE,CWR ECE", 3, "'ECE' is not a TCP flag");
        Fails("-p tcp --tcp-flags SYN ACK", 4, "never match");
        Fails("-p tcp --syn --tcp-flags SYN SYN", 3, "tcp-flags is already given");
        Fails("-p tcp --tcp-option 2", 2, "not supported");
        Fails("-p udp --syn", 2, "needs -p tcp before it");
    }

    [Fact]
    public void Icmp_types_read_by_name_number_and_code()
    {
        var ping = M("-p icmp --icmp-type echo-request");
        Assert.Equal((RangeMatch.Exactly(8), (RangeMatch?)null), (ping.IcmpType, ping.IcmpCode));
        var portUnreachable = M("-p icmp -m icmp --icmp-type port-unreachable");
        Assert.Equal((RangeMatch.Exactly(3), RangeMatch.Exactly(3)), (portUnreachable.IcmpType, portUnreachable.IcmpCode));
        Assert.Equal(RangeMatch.Exactly(4), M("-p icmp --icmp-type 3/4").IcmpCode);
        Assert.Equal(RangeMatch.Exactly(8, negated: true), M("-p icmp ! --icmp-type 8").IcmpType);
        Assert.Null(M("-p icmp --icmp-type any").IcmpType);
        var v6 = M("-p ipv6-icmp -m icmp6 --icmpv6-type neighbor-solicitation", IpFamily.Ipv6);
        Assert.Equal(RangeMatch.Exactly(135), v6.IcmpType);
        Assert.Equal(RangeMatch.Exactly(4), M("-p icmpv6 --icmpv6-type port-unreachable", IpFamily.Ipv6).IcmpCode);
        Fails("-p icmp ! --icmp-type 3/4", 4, "cannot negate a type and a code together");
        Fails("-p icmp ! --icmp-type any", 4, "never matches");
        Fails("-p icmp --icmp-type nonsense", 3, "not an ICMP type");
        Fails("-p icmp --icmp-type 8", 2, "ip6tables matches ICMPv6", IpFamily.Ipv6);
        Fails("-p icmp -m icmp --icmp-type 8", 3, "-m icmp is IPv4's", IpFamily.Ipv6);
        Fails("-p icmpv6 -m icmp6 --icmpv6-type 128", 3, "-m icmp6 is IPv6's");
        Fails("-p tcp --icmp-type 8", 2, "needs -p icmp before it");
    }

    [Fact]
    public void Length_dscp_ttl_hop_limit_fragment_and_mark()
    {
        Assert.Equal(new RangeMatch(100, 200), M("-m length --length 100:200").Length);
        Assert.Equal(new RangeMatch(64, 65535, true), M("-m length ! --length 64:").Length);
        Assert.Equal(RangeMatch.Exactly(46), M("-m dscp --dscp 0x2e").Dscp);
        Assert.Equal(RangeMatch.Exactly(10, true), M("-m dscp ! --dscp-class AF11").Dscp);
        Assert.Equal(RangeMatch.Exactly(64, true), M("-m ttl ! --ttl-eq 64").Ttl);
        Assert.Equal(new RangeMatch(0, 4), M("-m ttl --ttl-lt 5").Ttl);
        Assert.Equal(new RangeMatch(201, 255), M("-m ttl --ttl-gt 200").Ttl);
        Assert.Equal(RangeMatch.Exactly(255), M("-m hl --hl-eq 255", IpFamily.Ipv6).HopLimit);
        Assert.Equal(new RangeMatch(0, 1), M("-m hl --hl-lt 2", IpFamily.Ipv6).HopLimit);
        Assert.Equal(new FragmentMatch(FragmentKind.NotFirst), M("-f").Fragment);
        Assert.Equal(new FragmentMatch(FragmentKind.NotFirst, true), M("! --fragment").Fragment);
        Assert.Equal(new MarkMatch(0x10, 0xf0), M("-m mark --mark 0x10/0xf0").Mark);
        Assert.Equal(new MarkMatch(5, uint.MaxValue, true), M("-m mark ! --mark 5").Mark);
        Fails("-m dscp --dscp 64", 3, "0 to 63");
        Fails("-m ttl --ttl-lt 0", 3, "never matches");
        Fails("-m ttl ! --ttl-gt 5", 3, "cannot be negated with '!'");
        Fails("-m ttl --ttl-eq 5 --ttl-gt 6", 4, "takes one of");
        Fails("-m ttl --ttl-eq 5", 1, "ip6tables matches the hop limit", IpFamily.Ipv6);
        Fails("-m hl --hl-eq 5", 1, "iptables matches the TTL");
        Fails("-f", 0, "-f is IPv4's", IpFamily.Ipv6);
        Fails("-m mark --mark 0x3/0x1", 3, "never matches");
        Fails("-m length --length 70000", 3, "0 to 65535");
        Fails("-m length", 1, "needs one of its options");
    }

    [Fact]
    public void Limits_read_iptables_rates_and_defaults()
    {
        Assert.Equal(new LimitMatch(5, RateUnit.Second, 10), M("-m limit --limit 5/sec --limit-burst 10").Limit);
        Assert.Equal(new LimitMatch(3, RateUnit.Hour), M("-m limit").Limit);
        Assert.Equal(new LimitMatch(3, RateUnit.Hour, 20), M("-m limit --limit-burst 20").Limit);
        Assert.Equal(new LimitMatch(2, RateUnit.Minute), M("-m limit --limit 2/m").Limit);
        Assert.Equal(new LimitMatch(7, RateUnit.Second), M("-m limit --limit 7").Limit);
        Assert.Equal(new LimitMatch(1, RateUnit.Day), M("-m limit --limit 1/da").Limit);
        Fails("-m limit --limit 10001/s", 3, "faster than iptables' limit");
        Fails("-m limit --limit 5/fortnight", 3, "not a rate");
        Fails("-m limit --limit-burst 0", 3, "1 to 10000");
        Fails("-m limit --limit 1/s -m limit --limit 2/s", 6, "limit is already given");
        Fails("--limit 1/s", 0, "needs -m limit before it");
    }

    [Fact]
    public void The_comment_names_the_rule()
    {
        Assert.Equal("ssh in", Read("-m comment --comment \"ssh in\" -j ACCEPT").Name);
        Assert.Equal("trimmed", Read("-m comment --comment \"  trimmed \"").Name);
        Assert.Null(Read("-m comment --comment \"\"").Name);
        Assert.Equal(("!", Verdict.Log("!")), (Read("-m comment --comment ! -j LOG --log-prefix \"!\"").Name, Read("-j LOG --log-prefix !").Verdict));
        Fails("-m comment --comment \"a\tb\"", 3, "control characters");
        Fails("-m comment --comment " + new string('x', 256), 3, "255 bytes");
        Fails("-m comment --comment x -m comment --comment y", 6, "name is already given");
    }

    [Fact]
    public void Targets_read_into_verdicts()
    {
        Assert.Equal(Verdict.Accept, Read("-j ACCEPT").Verdict);
        Assert.Equal(Verdict.Drop, Read("--jump DROP").Verdict);
        Assert.Equal(Verdict.Return, Read("-j RETURN").Verdict);
        Assert.Equal(Verdict.Continue, Read("-p tcp").Verdict);
        Assert.Equal(Verdict.Jump("LOGDROP"), Read("-j LOGDROP").Verdict);
        Assert.Equal(Verdict.Goto("f2b-sshd"), Read("-g f2b-sshd").Verdict);
        Assert.Equal(Verdict.Reject(RejectWith.PortUnreachable), Read("-j REJECT").Verdict);
        Assert.Equal(Verdict.Reject(RejectWith.HostProhibited), Read("-j REJECT --reject-with icmp-host-prohibited").Verdict);
        Assert.Equal(Verdict.Reject(RejectWith.TcpReset), Read("-p tcp -j REJECT --reject-with tcp-rst").Verdict);
        Assert.Equal(Verdict.Reject(RejectWith.AdministrativelyProhibited), Read("-j REJECT --reject-with adm-prohibited", IpFamily.Ipv6).Verdict);
        Assert.Equal(Verdict.Reject(RejectWith.HostUnreachable), Read("-j REJECT --reject-with icmp6-addr-unreachable", IpFamily.Ipv6).Verdict);
        Assert.Equal(Verdict.Log("IN: "), Read("-j LOG --log-prefix \"IN: \"").Verdict);
        Assert.Equal(Verdict.Log(), Read("-j LOG --log-level 4").Verdict);
        Fails("-j MASQUERADE", 1, "not supported");
        Fails("-j ACCEPT -j DROP", 2, "has a target already");
        Fails("-g ACCEPT", 1, "write -j ACCEPT");
        Fails("-j REJECT --reject-with tcp-reset", 3, "needs -p tcp");
        Fails("-j REJECT --reject-with icmp-host-prohibited", 3, "not a reply", IpFamily.Ipv6);
        Fails("-j REJECT --reject-with icmp6-policy-fail", 3, "not a reply", IpFamily.Ipv6);
        Fails("-j ACCEPT --reject-with tcp-reset", 2, "option of -j REJECT");
        Fails("-j LOG --log-level debug", 3, "no levels");
        Fails("-j LOG --log-uid", 2, "not supported");
        Fails("-j LOG --log-prefix 123456789012345678901234567890", 3, "29 bytes");
        Fails("-j bad.name", 1, "not a chain name");
    }

    [Fact]
    public void Connection_tracking_reads_as_ct_state_and_ct_direction_and_writes_back()
    {
        var related = Read("-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT");
        Assert.Equal(new CtStateMatch(CtStates.Related | CtStates.Established), related.Match.CtState);
        var fresh = Read("-p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT");
        Assert.Equal(new CtStateMatch(CtStates.New), fresh.Match.CtState);
        var notNew = Read("-m conntrack ! --ctstate NEW --ctdir REPLY -j DROP");
        Assert.Equal((new CtStateMatch(CtStates.New, negated: true), CtDirection.Reply), (notNew.Match.CtState, notNew.Match.CtDirection));
        foreach (var rule in new[] { related, fresh, notNew })
            Assert.Equal(rule, IptablesRuleSpec.ParseRule(IptablesRuleSpec.FormatRule(rule, IpFamily.Ipv4), 0, IpFamily.Ipv4));
        Fails("-m conntrack --ctstate SNAT -j ACCEPT", 3, "NAT");
        Fails("-m conntrack ! --ctdir REPLY -j ACCEPT", 3, "cannot be negated");
        Fails("-m conntrack --ctstatus ASSURED -j ACCEPT", 2, "not an option bpfilter reads");
    }

    [Fact]
    public void Unknown_options_and_modules_are_refused()
    {
        Fails("-m owner --uid-owner 0", 1, "'owner' is not supported");
        Fails("-p tcp --bogus", 2, "not an option bpfilter reads");
        Fails("-x", 0, "not an option bpfilter reads");
        Fails("-p tcp stray", 2, "not an option");
        Fails("!", 0, "must be followed");
        Fails("! -j ACCEPT", 1, "cannot be negated");
        Fails("-p", 0, "needs a value");
        Fails("-c 1 x", 2, "not a counter");
        Assert.Equal(Verdict.Accept, Read("-c 10 2000 -j ACCEPT").Verdict);
        var e = Assert.Throws<IptablesRuleSpecException>(() => IptablesRuleSpec.Parse(["-I", "INPUT"], IpFamily.Ipv4));
        Assert.Equal((0, "-I"), (e.ArgumentIndex, e.Option));
    }

    [Fact]
    public void ParseRule_reads_the_specification_after_any_command_with_positions_in_the_whole_list()
    {
        string[] insert = ["-I", "INPUT", "1", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"];
        var rule = IptablesRuleSpec.ParseRule(insert, 3, IpFamily.Ipv4);
        Assert.Equal(new Rule(null, new Match { Family = IpFamily.Ipv4, Protocol = new(IpProtocol.Tcp), DestinationPort = PortMatch.Single(22) }, Verdict.Accept), rule);
        var e = Assert.Throws<IptablesRuleSpecException>(() => IptablesRuleSpec.ParseRule(["-D", "INPUT", "-p", "tcp", "--dport", "nosuchservice"], 2, IpFamily.Ipv4));
        Assert.Equal((5, "--dport"), (e.ArgumentIndex, e.Option));
        Assert.Equal("argument 6 (--dport): 'nosuchservice' is not a port number or range from 0 to 65535, or a service name /etc/services gives TCP", e.Message);
        Assert.Equal(1, Assert.Throws<IptablesRuleSpecException>(() => IptablesRuleSpec.Parse(["-A", "bad chain"], IpFamily.Ipv4)).ArgumentIndex);
    }

    [Fact]
    public void The_formatter_writes_what_the_parser_reads_back()
    {
        string[] specs =
        [
            "-s 10.0.0.0/8 -d 192.0.2.7/32 -i eth0 -p tcp -m tcp --sport 1024:65535 --dport 22 -m comment --comment \"ssh in\" -j ACCEPT",
            "! -s 10.0.0.0/8 ! -o wan0 ! -p udp -j DROP",
            "-p tcp -m tcp ! --tcp-flags FIN,SYN,RST,ACK SYN -m multiport --dports 80,443,8000:8080 -j WEB",
            "-p udp -m multiport ! --sports 1,2 -m multiport --dports 3:4,5 -g WEB",
            "-m iprange ! --src-range 10.0.0.1-10.0.0.5 --dst-range 10.0.1.0-10.0.2.255 -j RETURN",
            "-p icmp -m icmp --icmp-type 3/4 -m limit --limit 5/sec --limit-burst 10 -j ACCEPT",
            "-p icmp -m icmp ! --icmp-type 8 -j LOG --log-prefix \"say \\\"x\\\" \"",
            "-f -m length ! --length 100:200 -m dscp ! --dscp 0x0a -m ttl --ttl-gt 5 -m mark ! --mark 0x1/0xff -j REJECT --reject-with icmp-host-prohibited",
            "-s 10.0.0.0/24,10.2.0.0/24 -m ttl ! --ttl-eq 64",
            "-p 47 -j ACCEPT",
            "-p tcp -j REJECT --reject-with tcp-reset",
            "-p udp -m multiport ! --sports 0:1023 -m multiport --dports 0:65535",
        ];
        foreach (var spec in specs)
        {
            var rule = IptablesRuleSpec.Parse(Args("-A FORWARD " + spec), IpFamily.Ipv4);
            var written = IptablesRuleSpec.Format(rule, IpFamily.Ipv4);
            Assert.Equal(rule, IptablesRuleSpec.Parse(written, IpFamily.Ipv4));
        }
        var v6 = IptablesRuleSpec.Parse(Args("-A INPUT -s 2001:db8::/32 -p ipv6-icmp -m icmp6 --icmpv6-type 1/4 -m hl --hl-lt 2 -j REJECT --reject-with icmp6-adm-prohibited"), IpFamily.Ipv6);
        Assert.Equal("-A INPUT -s 2001:db8::/32 -p ipv6-icmp -m icmp6 --icmpv6-type 1/4 -m hl --hl-lt 2 -j REJECT --reject-with icmp6-adm-prohibited",
            IptablesArguments.Join(IptablesRuleSpec.Format(v6, IpFamily.Ipv6)));
        Assert.Equal(v6, IptablesRuleSpec.Parse(IptablesRuleSpec.Format(v6, IpFamily.Ipv6), IpFamily.Ipv6));
    }

    [Fact]
    public void The_formatter_writes_model_forms_iptables_spells_differently()
    {
        string Write(Match match, Verdict? verdict = null, IpFamily family = IpFamily.Ipv4) =>
            IptablesArguments.Join(IptablesRuleSpec.FormatRule(new Rule(null, match, verdict ?? Verdict.Accept), family));
        var tcp = new ProtocolMatch(IpProtocol.Tcp);
        Assert.Equal("-p tcp -j REJECT --reject-with tcp-reset", Write(new Match { Protocol = tcp }, Verdict.Reject()));
        Assert.Equal("-p udp -j REJECT --reject-with icmp6-port-unreachable", Write(new Match { Protocol = new(IpProtocol.Udp) }, Verdict.Reject(), IpFamily.Ipv6));
        Assert.Equal("-m ttl --ttl-gt 4 -j ACCEPT", Write(new Match { Ttl = new RangeMatch(0, 4, true) }));
        Assert.Equal("-m ttl --ttl-lt 9 -j ACCEPT", Write(new Match { Ttl = new RangeMatch(9, 255, true) }));
        Assert.Equal("-p tcp -m tcp --syn -j ACCEPT", Write(new Match { Protocol = tcp, TcpFlags = TcpFlagsMatch.Syn }));
        Assert.Equal("-s 10.0.0.0/8 -p tcp -j ACCEPT", Write(new Match { Source = new AddressMatch([P("10.0.0.0/8")]), Protocol = tcp }));
        Assert.Equal("-j LOG", Write(Match.Any, Verdict.Log()));
        // iptables-nft would store -m udp's "! --sport 0:1023" as "--sport 1024:65535"; -m multiport keeps it.
        Assert.Equal("-p udp -m multiport ! --sports 0:1023 -j ACCEPT",
            Write(new Match { Protocol = new(IpProtocol.Udp), SourcePort = new PortMatch([new PortRange(0, 1023)], negated: true) }));
        Assert.Equal("-p udp -m udp ! --sport 1:1023 -j ACCEPT",
            Write(new Match { Protocol = new(IpProtocol.Udp), SourcePort = new PortMatch([new PortRange(1, 1023)], negated: true) }));
        Assert.Equal("-m comment --comment \"a b\"", IptablesArguments.Join(IptablesRuleSpec.FormatRule(new Rule("a b", Match.Any, Verdict.Continue), IpFamily.Ipv4)));
    }

    [Theory]
    [MemberData(nameof(Inexpressible))]
    public void The_formatter_refuses_what_iptables_cannot_say(Rule rule, IpFamily family, string reasonPart)
    {
        var e = Assert.Throws<BpfilterException>(() => IptablesRuleSpec.FormatRule(rule, family));
        Assert.Equal("IptablesInexpressible", e.ErrorId);
        Assert.Contains(reasonPart, e.Message);
    }

    public static TheoryData<Rule, IpFamily, string> Inexpressible()
    {
        var tcp = new ProtocolMatch(IpProtocol.Tcp);
        var icmp = new ProtocolMatch(IpProtocol.Icmp);
        Rule R(Match m, Verdict? v = null) => new(null, m, v ?? Verdict.Accept);
        return new()
        {
            { R(new Match { Source = AddressMatch.InSet("bad") }), IpFamily.Ipv4, "ipset" },
            { R(new Match { Protocol = tcp, DestinationPort = PortMatch.InSet("web") }), IpFamily.Ipv4, "ipset" },
            { R(new Match { Source = new AddressMatch([P("10.0.0.0/8"), P("12.0.0.0/8")], negated: true) }), IpFamily.Ipv4, "cannot negate a list" },
            { R(new Match { Source = new AddressMatch([P("10.0.0.0/8"), P("12.0.0.0/8")]), Limit = new LimitMatch(1, RateUnit.Second) }), IpFamily.Ipv4, "limit bucket" },
            { R(new Match { Source = new AddressMatch([P("10.0.0.0/8"), P("10.0.0.0/16")]) }, Verdict.Log()), IpFamily.Ipv4, "overlap" },
            { R(new Match { Source = new AddressMatch([P("10.0.0.0/8")]) }), IpFamily.Ipv6, "ipv4 only" },
            { R(new Match { Family = IpFamily.Ipv6 }), IpFamily.Ipv4, "ipv6 only" },
            { R(new Match { Source = new AddressMatch([P("::/0")], negated: true) }), IpFamily.Ipv6, "never matches" },
            { R(new Match { InInterface = new InterfaceMatch("eth+") }), IpFamily.Ipv4, "wildcard" },
            { R(new Match { Protocol = new ProtocolMatch(new IpProtocol(0)) }), IpFamily.Ipv4, "every protocol" },
            { R(new Match { Fragment = new FragmentMatch(FragmentKind.First) }), IpFamily.Ipv4, "first fragments" },
            { R(new Match { Fragment = new FragmentMatch(FragmentKind.NotFirst) }), IpFamily.Ipv6, "-m frag" },
            { R(new Match { Protocol = tcp, TcpFlags = new TcpFlagsMatch(TcpFlags.Ece, TcpFlags.Ece) }), IpFamily.Ipv4, "not ECE" },
            { R(new Match { Protocol = tcp, DestinationPort = new PortMatch(Enumerable.Range(1, 8).Select(i => new PortRange((ushort)(i * 10), (ushort)(i * 10 + 1)))) }), IpFamily.Ipv4, "needs 16" },
            { R(new Match { Protocol = icmp, IcmpType = new RangeMatch(3, 5) }), IpFamily.Ipv4, "one ICMP type" },
            { R(new Match { Protocol = icmp, IcmpType = RangeMatch.Exactly(255) }), IpFamily.Ipv4, "every type" },
            { R(new Match { Protocol = icmp, IcmpCode = RangeMatch.Exactly(1) }), IpFamily.Ipv4, "only together with a type" },
            { R(new Match { Protocol = icmp, IcmpType = RangeMatch.Exactly(3, true), IcmpCode = RangeMatch.Exactly(1) }), IpFamily.Ipv4, "negates an ICMP type and code together" },
            { R(new Match { Dscp = new RangeMatch(1, 2) }), IpFamily.Ipv4, "one DSCP value" },
            { R(new Match { Ttl = new RangeMatch(5, 10) }), IpFamily.Ipv4, "equal to, below or above" },
            { R(new Match { Ttl = new RangeMatch(0, 255) }), IpFamily.Ipv4, "equal to, below or above" },
            { R(new Match { Mark = new MarkMatch(3, 1) }), IpFamily.Ipv4, "never matches" },
            { R(new Match { Limit = new LimitMatch(20_000, RateUnit.Second) }), IpFamily.Ipv4, "faster" },
            { R(new Match { Limit = new LimitMatch(1, RateUnit.Second, 20_000) }), IpFamily.Ipv4, "burst" },
            { R(Match.Any, Verdict.Reject()), IpFamily.Ipv4, "one iptables rule cannot say" },
            { R(new Match { Protocol = new ProtocolMatch(IpProtocol.Udp) }, Verdict.Reject(RejectWith.TcpReset)), IpFamily.Ipv4, "-p tcp" },
            { R(Match.Any, Verdict.Reject(RejectWith.HostProhibited)), IpFamily.Ipv6, "ip6tables cannot reject with host-prohibited" },
            { R(Match.Any, Verdict.Log(new string('x', 30))), IpFamily.Ipv4, "29 bytes" },
            { R(Match.Any, Verdict.Jump("LOG")), IpFamily.Ipv4, "its target LOG" },
            { new Rule(new string('é', 128), Match.Any, Verdict.Accept), IpFamily.Ipv4, "255-byte comments" },
        };
    }
}
