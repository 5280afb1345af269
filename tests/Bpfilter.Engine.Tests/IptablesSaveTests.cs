using Bpfilter.Engine.Formats;
using Bpfilter.Engine.Formats.Iptables;
using Bpfilter.Engine.Rules;
using Xunit;

namespace Bpfilter.Engine.Tests;

/// <summary>iptables-save dumps: the corpus under Iptables/, errors with their positions, merging, placement and writing back.</summary>
public sealed class IptablesSaveTests
{
    public static string CorpusDirectory => Path.Combine(Samples.Root, "tests", "Bpfilter.Engine.Tests", "Iptables");

    /// <summary>The file names of the corpus.</summary>
    public static IEnumerable<string> CorpusFiles => Directory.GetFiles(CorpusDirectory, "*.rules").Select(f => Path.GetFileName(f)!).Order();

    public static TheoryData<string> Corpus() => new(CorpusFiles);

    internal static IptablesSaveSource Source(string file) => IptablesSaveSource.FromFile(Path.Combine(CorpusDirectory, file));

    private static Ruleset Read(string text, IpFamily family = IpFamily.Ipv4, IptablesSaveOptions? options = null) =>
        IptablesSaveReader.Read(text, "x.rules", "web", family, options);

    private static void Fails(string text, long line, long column, string reasonPart, IpFamily family = IpFamily.Ipv4)
    {
        var e = Assert.Throws<RulesetFormatException>(() => Read(text, family));
        Assert.Equal(("x.rules", line, column), (e.File, e.Line, e.Column));
        Assert.Contains(reasonPart, e.Reason);
    }

    /// <summary>Two rulesets hold the same chains and rules (where they were read from aside).</summary>
    internal static void AssertSame(Ruleset expected, Ruleset actual)
    {
        (expected, actual) = (WithoutOtherFamily(expected), WithoutOtherFamily(actual));
        Assert.Equal(expected.Chains.Select(c => c.Name), actual.Chains.Select(c => c.Name));
        for (int i = 0; i < expected.Chains.Count; i++)
        {
            Assert.Equal(expected.Chains[i].Rules.ToList(), actual.Chains[i].Rules.ToList());
            Assert.Equal(expected.Chains[i], actual.Chains[i]);
        }
        Assert.Equal(expected.UserChains.Select(c => c.Name), actual.UserChains.Select(c => c.Name));
        for (int i = 0; i < expected.UserChains.Count; i++) Assert.Equal(expected.UserChains[i].Rules.ToList(), actual.UserChains[i].Rules.ToList());
    }

    /// <summary>A one-family dump cannot say what the other family meets: the reader accepts it where a policy would drop it. Those rules, removed.</summary>
    internal static Ruleset WithoutOtherFamily(Ruleset read) => new(read.Name,
        read.Chains.Select(c => new Chain(c.Name, c.Hook, c.Interface, c.Policy, c.Rules.Where(r => r.Name is not { } n || !n.EndsWith("tables dump", StringComparison.Ordinal)).ToList(),
            c.Mode, c.Priority, c.Order, c.Cgroup, c.NetworkNamespace)).ToList(), read.SourcePath, read.UserChains, read.Sets);

    [Fact]
    public void A_one_family_dump_leaves_the_other_family_to_its_own_tables()
    {
        var ruleset = IptablesSaveReader.Read(Minimal + "-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n", "v4.rules", "web", IpFamily.Ipv4);
        var last = ruleset.Chains.Single(c => c.Name == "INPUT").Rules[^1];
        Assert.Equal(("ipv6: no ip6tables dump", IpFamily.Ipv6, VerdictKind.Accept), (last.Name, last.Match.Family, last.Verdict.Kind));
        Assert.DoesNotContain(ruleset.Chains.Single(c => c.Name == "FORWARD").Rules, r => r.Match.Family == IpFamily.Ipv6); // its policy accepts already
    }

    private const string Minimal = "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n";

    [Fact]
    public void A_web_server_dump_reads_into_its_chains_and_rules()
    {
        var source = Source("web-server.v4.rules");
        Assert.Equal(IpFamily.Ipv4, source.Family);
        var full = IptablesSaveReader.Read([source], "web");
        Assert.Equal(["ipv6: no ip6tables dump", "ipv6: no ip6tables dump"], full.Chains.SelectMany(c => c.Rules).Where(r => r.Match.Family == IpFamily.Ipv6).Select(r => r.Name));
        var ruleset = WithoutOtherFamily(full);

        Assert.Equal("web", ruleset.Name);
        Assert.Equal(Path.Combine(CorpusDirectory, "web-server.v4.rules"), ruleset.SourcePath);
        Assert.Equal([("INPUT", Hook.NfInput, Verdict.Drop, 13), ("FORWARD", Hook.NfForward, Verdict.Drop, 0), ("OUTPUT", Hook.NfOutput, Verdict.Accept, 0)],
            ruleset.Chains.Select(c => (c.Name, c.Hook, c.Policy, c.Rules.Count)));
        Assert.Equal([("LOGDROP", 2), ("SSH-IN", 4)], ruleset.UserChains.Select(c => (c.Name, c.Rules.Count)));
        var input = ruleset.Chains[0].Rules;
        Assert.Equal(new Rule("loopback", new Match { Family = IpFamily.Ipv4, InInterface = new InterfaceMatch("lo") }, Verdict.Accept), input[0]);
        Assert.Equal(new Rule(null, new Match { Family = IpFamily.Ipv4, Protocol = new(IpProtocol.Tcp), DestinationPort = PortMatch.Single(22) }, Verdict.Jump("SSH-IN")), input[2]);
        Assert.Equal(new Rule("ping, limited", new Match
        {
            Family = IpFamily.Ipv4, Protocol = new(IpProtocol.Icmp), IcmpType = RangeMatch.Exactly(8), Limit = new LimitMatch(5, RateUnit.Second, 10),
        }, Verdict.Accept), input[7]);
        Assert.Equal(Verdict.Jump("LOGDROP"), input[^1].Verdict);
        Assert.Equal(Verdict.Log("IN-DROP: "), ruleset.UserChains[0].Rules[0].Verdict);
    }

    [Fact]
    public void An_ip6tables_dump_reads_as_ipv6_by_its_header()
    {
        var source = Source("web-server.v6.rules");
        Assert.Equal(IpFamily.Ipv6, source.Family);
        var ruleset = WithoutOtherFamily(IptablesSaveReader.Read([source], "web"));
        Assert.All(ruleset.Chains.SelectMany(c => c.Rules).Concat(ruleset.UserChains.SelectMany(c => c.Rules)), r => Assert.Equal(IpFamily.Ipv6, r.Match.Family));
        var solicitation = ruleset.Chains[0].Rules[1];
        Assert.Equal(new Rule("neighbour solicitation", new Match
        {
            Family = IpFamily.Ipv6, Protocol = new(IpProtocol.Icmpv6), IcmpType = RangeMatch.Exactly(135), HopLimit = RangeMatch.Exactly(255),
        }, Verdict.Accept), solicitation);
        Assert.Equal(Verdict.Reject(RejectWith.AdministrativelyProhibited), ruleset.UserChains[1].Rules[^1].Verdict);
    }

    [Fact]
    public void Repeated_comments_get_distinct_names_and_empty_other_tables_are_skipped()
    {
        var ruleset = IptablesSaveReader.Read([Source("fail2ban.v4.rules")], "f2b");
        var sshd = ruleset.FindUserChain("f2b-sshd")!;
        Assert.Equal(["banned", "banned #3", "banned #2", "banned #4", null], sshd.Rules.Select(r => r.Name));
        Assert.Equal(["banned", "banned #2", null], ruleset.FindUserChain("f2b-nginx")!.Rules.Select(r => r.Name));
        Assert.Equal(["INPUT", "FORWARD", "OUTPUT"], ruleset.Chains.Select(c => c.Name));
    }

    [Fact]
    public void A_hand_written_restore_file_reads_its_short_forms()
    {
        var ruleset = IptablesSaveReader.Read([Source("handwritten.v4.rules")], "hand");
        var input = ruleset.Chains[0].Rules;
        Assert.Equal(Verdict.Drop, ruleset.Chains[0].Policy);
        Assert.Equal(new AddressMatch([IpPrefix.Parse("10.0.0.0/8"), IpPrefix.Parse("172.16.0.0/12"), IpPrefix.Parse("192.168.0.0/16")]), input[1].Match.Source);
        Assert.Equal("ssh from \"private\" nets", input[1].Name);
        Assert.Equal(TcpFlagsMatch.Syn, input[2].Match.TcpFlags);
        Assert.Equal(4, input[4].Match.Source!.Prefixes.Count);
        Assert.Equal(new LimitMatch(3, RateUnit.Second), input[6].Match.Limit);
        Assert.Equal((RangeMatch.Exactly(3), RangeMatch.Exactly(3)), (input[7].Match.IcmpType!, input[7].Match.IcmpCode!));
        Assert.Equal((RangeMatch.Exactly(46), new RangeMatch(64, 65535)), (input[8].Match.Dscp!, input[8].Match.Length!));
        Assert.Equal(Verdict.Log("drop: "), input[9].Verdict);
        var services = ruleset.FindUserChain("SERVICES")!.Rules;
        Assert.Equal([null, "web", "web #2"], services.Select(r => r.Name));
        Assert.Equal([Verdict.Accept, Verdict.Reject(RejectWith.PortUnreachable), Verdict.Reject(RejectWith.TcpReset)], services.Select(r => r.Verdict));
    }

    [Theory]
    [MemberData(nameof(Corpus))]
    public void Every_dump_of_the_corpus_reads_back_the_same_after_writing(string file)
    {
        var source = Source(file);
        var first = IptablesSaveReader.Read([source], "corpus");
        var written = IptablesSaveWriter.Write(first, source.Family);
        Assert.Equal(source.Family, IptablesSaveReader.DetectFamily(written));
        var second = IptablesSaveReader.Read(written, file, "corpus", source.Family);
        AssertSame(first, second);
        Assert.Equal(written, IptablesSaveWriter.Write(second, source.Family));
    }

    [Theory]
    [InlineData(IpFamily.Ipv4, true)]
    [InlineData(IpFamily.Ipv6, true)]
    [InlineData(IpFamily.Ipv4, false)]
    [InlineData(IpFamily.Ipv6, false)]
    public void Generated_rulesets_read_back_the_same_after_writing(IpFamily family, bool commaLists)
    {
        int rules = 0;
        for (int seed = 0; seed < 60; seed++)
        {
            var ruleset = IptablesGenerators.Ruleset(seed * 4 + (int)family + (commaLists ? 1 : 0), family, commaLists);
            var written = IptablesSaveWriter.Write(ruleset, family);
            AssertSame(ruleset, IptablesSaveReader.Read(written, $"seed{seed}", "generated", family));
            rules += ruleset.Chains.Sum(c => c.Rules.Count) + ruleset.UserChains.Sum(c => c.Rules.Count);
        }
        Assert.True(rules > 1000, $"only {rules} rules were generated");
    }

    [Fact]
    public void Dumps_of_both_families_merge_into_one_ruleset()
    {
        var ruleset = IptablesSaveReader.Read([Source("web-server.v4.rules"), Source("web-server.v6.rules")], "web");
        var input = ruleset.Chains[0].Rules;
        Assert.Equal(13 + 12, input.Count);
        Assert.All(input.Take(13), r => Assert.Equal(IpFamily.Ipv4, r.Match.Family));
        Assert.All(input.Skip(13), r => Assert.Equal(IpFamily.Ipv6, r.Match.Family));
        Assert.Equal(("loopback", "loopback #2"), (input[0].Name, input[13].Name));
        Assert.Equal([("LOGDROP", 4), ("SSH-IN", 7)], ruleset.UserChains.Select(c => (c.Name, c.Rules.Count)));

        var again = IptablesSaveReader.Read(
            [new(IptablesSaveWriter.Write(ruleset, IpFamily.Ipv4), "a", IpFamily.Ipv4), new(IptablesSaveWriter.Write(ruleset, IpFamily.Ipv6), "b", IpFamily.Ipv6)], "web");
        AssertSame(ruleset, again);
    }

    [Fact]
    public void Different_policies_of_the_two_families_stay_each_familys_own()
    {
        var v4 = "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp -j RETURN\n-A INPUT -p udp -j ACCEPT\nCOMMIT\n";
        var v6 = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p udp -j RETURN\n-A INPUT -p tcp -j DROP\nCOMMIT\n";
        var ruleset = IptablesSaveReader.Read([new(v6, "v6", IpFamily.Ipv6), new(v4, "v4", IpFamily.Ipv4)], "mixed");
        var input = Assert.Single(ruleset.Chains);
        Assert.Equal(Verdict.Drop, input.Policy);
        Assert.Equal([(IpFamily.Ipv4, Verdict.Return), (IpFamily.Ipv4, Verdict.Accept), (IpFamily.Ipv6, Verdict.Accept), (IpFamily.Ipv6, Verdict.Drop), (IpFamily.Ipv6, Verdict.Accept)],
            input.Rules.Select(r => (r.Match.Family!.Value, r.Verdict)));
        Assert.Equal(new Match { Family = IpFamily.Ipv6 }, input.Rules[^1].Match);

        var written6 = IptablesSaveWriter.Write(ruleset, IpFamily.Ipv6);
        Assert.Contains(":INPUT DROP [0:0]\n", written6);
        Assert.Contains("\n-A INPUT -p udp -j ACCEPT\n-A INPUT -p tcp -j DROP\n-A INPUT -j ACCEPT\nCOMMIT\n", written6);
        var again = IptablesSaveReader.Read([new(IptablesSaveWriter.Write(ruleset, IpFamily.Ipv4), "a", IpFamily.Ipv4), new(written6, "b", IpFamily.Ipv6)], "mixed");
        // The writer declares FORWARD and OUTPUT too (with policy ACCEPT: no chain there means nothing is filtered).
        Assert.Equal(input, again.Chains[0]);
        Assert.Equal([Verdict.Accept, Verdict.Accept], again.Chains.Skip(1).Select(c => c.Policy));
        var forwardOnlyInV6 = IptablesSaveReader.Read([new(v4, "v4", IpFamily.Ipv4), new(v6.Replace("COMMIT", ":FORWARD DROP [0:0]\n-A FORWARD -p gre -j ACCEPT\nCOMMIT"), "v6", IpFamily.Ipv6)], "mixed");
        var forward = forwardOnlyInV6.Chains[1];
        Assert.Equal(("FORWARD", Verdict.Accept), (forward.Name, forward.Policy));
        Assert.Equal([(IpFamily.Ipv6, Verdict.Accept), (IpFamily.Ipv6, Verdict.Drop)], forward.Rules.Select(r => (r.Match.Family!.Value, r.Verdict)));
        var twice = Assert.Throws<RulesetFormatException>(() => IptablesSaveReader.Read([new(v4, "a", IpFamily.Ipv4), new(v4, "b", IpFamily.Ipv4)], "x"));
        Assert.Contains("give one dump per family", twice.Reason);
    }

    [Fact]
    public void Built_in_chains_can_be_placed_at_other_hooks()
    {
        var options = new IptablesSaveOptions(new Dictionary<string, ChainPlacement> { ["input"] = ChainPlacement.Parse("xdp:eth1"), ["OUTPUT"] = ChainPlacement.Parse("tc-egress:eth1") });
        var ruleset = Read(Minimal + "-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n", options: options);
        Assert.Equal([("INPUT", Hook.Xdp, "eth1"), ("FORWARD", Hook.NfForward, null), ("OUTPUT", Hook.TcEgress, "eth1")],
            ruleset.Chains.Select(c => (c.Name, c.Hook, c.Interface)));
        AssertSame(ruleset, Read(IptablesSaveWriter.Write(ruleset, IpFamily.Ipv4, options), options: options));
        var e = Assert.Throws<BpfilterException>(() => IptablesSaveWriter.Write(ruleset, IpFamily.Ipv4));
        Assert.Equal("IptablesInexpressible", e.ErrorId);
        Assert.Contains("chain 'INPUT' attaches at xdp on eth1, where no built-in chain of iptables is placed", e.Message);

        Assert.Equal(new ChainPlacement(Hook.Xdp, "eth1", XdpMode.Generic), ChainPlacement.Parse("xdp:eth1:generic"));
        Assert.Equal("cgroup-ingress:/sys/fs/cgroup/web", ChainPlacement.Parse("cgroup-ingress:/sys/fs/cgroup/web").ToString());
        foreach (var (bad, reason) in new[] { ("xdp", "needs an interface"), ("nf-input:eth0", "takes no interface"), ("sideways", "not a hook"), ("xdp:eth0:fast", "not an XDP mode") })
        {
            var refused = Assert.Throws<BpfilterException>(() => ChainPlacement.Parse(bad));
            Assert.Equal("ChainPlacementInvalid", refused.ErrorId);
            Assert.Contains(reason, refused.Message);
        }
        var notBuiltIn = Assert.Throws<BpfilterException>(() => new IptablesSaveOptions(new Dictionary<string, ChainPlacement> { ["PREROUTING"] = new(Hook.NfPrerouting) }));
        Assert.Contains("only INPUT, FORWARD and OUTPUT", notBuiltIn.Message);
        var clash = Assert.Throws<BpfilterException>(() => Read(Minimal + "COMMIT\n", options: new(new Dictionary<string, ChainPlacement> { ["INPUT"] = new(Hook.NfForward) })));
        Assert.Contains("INPUT and FORWARD are both placed at nf-forward", clash.Message);
    }

    [Fact]
    public void Every_declared_chain_becomes_a_chain_and_counters_are_skipped()
    {
        var ruleset = Read("# Generated by iptables-save\n*filter\n:INPUT ACCEPT [12:3400]\n:EMPTY - [0:0]\n[5:600] -A INPUT -j ACCEPT\nCOMMIT\n# Completed\n");
        Assert.Equal(("INPUT", Verdict.Accept, 1), (ruleset.Chains.Single().Name, ruleset.Chains.Single().Policy, ruleset.Chains.Single().Rules.Count));
        Assert.Empty(Assert.Single(ruleset.UserChains).Rules);
        Assert.Equal(3, Read(Minimal + "COMMIT\n").Chains.Count);
    }

    [Theory]
    [InlineData("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j DNAT --to 1.2.3.4\nCOMMIT\n" + Minimal + "COMMIT\n", 3, 1, "the *nat table has rules")]
    [InlineData("*mangle\n:PREROUTING DROP [0:0]\nCOMMIT\n" + Minimal + "COMMIT\n", 2, 13, "policy DROP")]
    [InlineData("*raw\n:X - [0:0]\nCOMMIT\n" + Minimal + "COMMIT\n", 2, 2, "the *raw table declares the chain X")]
    [InlineData(Minimal + "-A INPUT -p tcp --dport 22 -m state --state SNAT -j ACCEPT\nCOMMIT\n", 5, 45, "NAT")]
    [InlineData(Minimal + "-A INPUT -p tcp --dport nosuchservice -j ACCEPT\nCOMMIT\n", 5, 25, "or a service name /etc/services gives TCP")]
    [InlineData(Minimal + "-A INPUT -j NOWHERE\nCOMMIT\n", 5, 13, "there is no chain NOWHERE")]
    [InlineData(Minimal + "-A INPUT -j FORWARD\nCOMMIT\n", 5, 13, "FORWARD is a built-in chain")]
    [InlineData(Minimal + "-A INPUT -m comment --comment \"open\nCOMMIT\n", 5, 31, "not closed")]
    [InlineData(Minimal + "-A NOTDECLARED -j ACCEPT\nCOMMIT\n", 5, 4, "is not declared")]
    [InlineData("*filter\n:INPUT DROP [0:0]\n-A OUTPUT -j ACCEPT\nCOMMIT\n", 3, 4, "its policy is unknown")]
    [InlineData(Minimal + "-I INPUT -j ACCEPT\nCOMMIT\n", 5, 1, "not iptables-restore's other commands")]
    [InlineData(Minimal + "[1:2]\nCOMMIT\n", 5, 1, "counters and no rule")]
    [InlineData(Minimal + ":INPUT ACCEPT [0:0]\nCOMMIT\n", 5, 2, "declared twice")]
    [InlineData(Minimal + ":MINE ACCEPT [0:0]\nCOMMIT\n", 5, 7, "declare it with '-'")]
    [InlineData("*filter\n:INPUT RETURN [0:0]\nCOMMIT\n", 2, 8, "ACCEPT or DROP")]
    [InlineData(Minimal + ":abcdefghijklmnopqrstuvwxyz012 - [0:0]\nCOMMIT\n", 5, 2, "longer than iptables' 28")]
    [InlineData(Minimal + ":bad.name - [0:0]\nCOMMIT\n", 5, 2, "not a chain name")]
    [InlineData(Minimal + ":INPUT\nCOMMIT\n", 5, 1, "not a chain declaration")]
    [InlineData(Minimal + "COMMIT\n-A INPUT -j ACCEPT\n", 6, 1, "outside a table")]
    [InlineData(Minimal + "-A INPUT -j ACCEPT\n", 6, 1, "has no COMMIT")]
    [InlineData(Minimal + "*nat\nCOMMIT\n", 5, 1, "has no COMMIT before this table starts")]
    [InlineData(Minimal + "COMMIT\n*filter\nCOMMIT\n", 6, 1, "second *filter")]
    [InlineData("*nat\nCOMMIT\n", 1, 1, "no *filter table")]
    [InlineData(Minimal + " # not a comment\nCOMMIT\n", 5, 2, "'#' is not a rule")]
    [InlineData(Minimal + "-A INPUT\u0007\nCOMMIT\n", 5, 9, "control character U+0007")]
    [InlineData(Minimal + ":A - [0:0]\n:B - [0:0]\n-A INPUT -j A\n-A A -j B\n-A B -g A\nCOMMIT\n", 9, 9, "loop: A -> B -> A")]
    public void Bad_dumps_fail_at_their_line_and_column(string text, long line, long column, string reasonPart) => Fails(text, line, column, reasonPart);

    [Fact]
    public void Twenty_thousand_banned_addresses_with_one_comment_read_and_write_in_linear_time()
    {
        var text = new System.Text.StringBuilder(Minimal + ":f2b-sshd - [0:0]\n-A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd\n");
        for (int i = 0; i < 20_000; i++)
            text.Append($"-A f2b-sshd -s 10.{i >> 16}.{(i >> 8) & 255}.{i & 255}/32 -m comment --comment banned -j REJECT --reject-with icmp-port-unreachable\n");
        text.Append("COMMIT\n");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var ruleset = Read(text.ToString());
        var written = IptablesSaveWriter.Write(ruleset, IpFamily.Ipv4);
        clock.Stop();
        var banned = ruleset.UserChains[0].Rules;
        Assert.Equal(("banned", "banned #2", "banned #20000"), (banned[0].Name, banned[1].Name, banned[^1].Name));
        Assert.Contains("-A f2b-sshd -s 10.0.78.31/32 -m comment --comment \"banned #20000\" -j REJECT --reject-with icmp-port-unreachable\n", written);
        // Trying " #2", " #3", ... afresh for each repeat would take minutes here.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"reading and writing took {clock.Elapsed}");
    }

    [Fact]
    public void A_chain_of_more_rules_than_the_limit_fails_at_the_first_rule_too_many()
    {
        var tooMany = new System.Text.StringBuilder(Minimal);
        for (int i = 0; i <= YamlRulesetReader.MaxRulesPerChain; i++) tooMany.Append("-A INPUT -j ACCEPT\n");
        Fails(tooMany.Append("COMMIT\n").ToString(), 5 + YamlRulesetReader.MaxRulesPerChain, 1, "more than 100000 rules, the limit for a chain");
    }

    [Fact]
    public void A_family_the_file_contradicts_is_refused_and_files_are_checked()
    {
        using var dir = new TemporaryDirectory();
        var v6 = Path.Combine(dir.Path, "rules.v6");
        File.Copy(Path.Combine(CorpusDirectory, "web-server.v6.rules"), v6);
        Assert.Equal(IpFamily.Ipv6, IptablesSaveSource.FromFile(v6).Family);
        var contradicted = Assert.Throws<RulesetFormatException>(() => IptablesSaveSource.FromFile(v6, IpFamily.Ipv4));
        Assert.Contains("written by ip6tables, but it is read as IPv4", contradicted.Reason);
        var plain = Path.Combine(dir.Path, "plain");
        File.WriteAllText(plain, Minimal + "COMMIT\n");
        Assert.Equal(IpFamily.Ipv4, IptablesSaveSource.FromFile(plain).Family);
        Assert.Equal(IpFamily.Ipv6, IptablesSaveSource.FromFile(plain, IpFamily.Ipv6).Family);
        Assert.Equal("RulesetNotFound", Assert.Throws<BpfilterException>(() => IptablesSaveSource.FromFile(Path.Combine(dir.Path, "missing"))).ErrorId);
        var latin1 = Path.Combine(dir.Path, "latin1");
        File.WriteAllBytes(latin1, [.. System.Text.Encoding.ASCII.GetBytes("*filter\n:INPUT ACCEPT\n-A INPUT -m comment --comment caf"), 0xE9, .. "\nCOMMIT\n"u8.ToArray()]);
        var bad = Assert.Throws<RulesetFormatException>(() => IptablesSaveSource.FromFile(latin1));
        Assert.Equal((3L, 34L), (bad.Line, bad.Column));
    }

    [Fact]
    public void The_writer_leaves_out_the_other_familys_rules_and_declares_every_built_in_chain()
    {
        var tcp = new ProtocolMatch(IpProtocol.Tcp);
        var ruleset = new Ruleset("web", [new Chain("in", Hook.NfInput, null, Verdict.Drop,
        [
            new Rule("ssh", new Match { Protocol = tcp, DestinationPort = PortMatch.Single(22) }, Verdict.Accept),
            new Rule("v4 only", new Match { Source = new AddressMatch([IpPrefix.Parse("10.0.0.0/8")]) }, Verdict.Accept),
            new Rule("v6 only", new Match { Source = new AddressMatch([IpPrefix.Parse("2001:db8::/32")]) }, Verdict.Accept),
        ])]);
        Assert.Equal("""
            # Generated by Bpfilter from ruleset web, for iptables-restore
            *filter
            :INPUT DROP [0:0]
            :FORWARD ACCEPT [0:0]
            :OUTPUT ACCEPT [0:0]
            -A INPUT -p tcp -m tcp --dport 22 -m comment --comment ssh -j ACCEPT
            -A INPUT -s 10.0.0.0/8 -m comment --comment "v4 only" -j ACCEPT
            COMMIT

            """.ReplaceLineEndings("\n"), IptablesSaveWriter.Write(ruleset, IpFamily.Ipv4));
        var v6 = IptablesSaveWriter.Write(ruleset, IpFamily.Ipv6);
        Assert.Contains("-A INPUT -s 2001:db8::/32 -m comment --comment \"v6 only\" -j ACCEPT\n", v6);
        Assert.DoesNotContain("10.0.0.0", v6);
    }

    [Theory]
    [MemberData(nameof(Unwritable))]
    public void The_writer_refuses_what_a_dump_cannot_hold(Ruleset ruleset, string reasonPart)
    {
        var e = Assert.Throws<BpfilterException>(() => IptablesSaveWriter.Write(ruleset, IpFamily.Ipv4));
        Assert.Equal("IptablesInexpressible", e.ErrorId);
        Assert.Contains(reasonPart, e.Message);
    }

    public static TheoryData<Ruleset, string> Unwritable()
    {
        Chain Input(params Rule[] rules) => new("INPUT", Hook.NfInput, null, Verdict.Accept, rules);
        return new()
        {
            { new Ruleset("x", [new Chain("edge", Hook.TcIngress, "eth0", Verdict.Accept, [])]), "attaches at tc-ingress on eth0, where no built-in chain" },
            { new Ruleset("x", [new Chain("INPUT", Hook.NfInput, null, Verdict.Accept, [], priority: -10)]), "priority -10" },
            { new Ruleset("x", [new Chain("INPUT", Hook.NfInput, null, Verdict.Accept, [], networkNamespace: "web")]), "network namespace web" },
            { new Ruleset("x", [Input()], null, [new UserChain("OUTPUT", [])]), "name of an iptables built-in chain" },
            { new Ruleset("x", [Input()], null, [new UserChain("abcdefghijklmnopqrstuvwxyz012", [])]), "longer than iptables' 28" },
            { new Ruleset("x", [Input(new Rule("fine", Match.Any, Verdict.Accept), new Rule("bad", new Match { Dscp = new RangeMatch(1, 3) }, Verdict.Drop))]),
                "chain 'INPUT' rule 2 ('bad'): iptables matches one DSCP value" },
        };
    }
}

/// <summary>A directory under /tmp removed with everything in it.</summary>
internal sealed class TemporaryDirectory : IDisposable
{
    public TemporaryDirectory() => Directory.CreateDirectory(Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "bpft-" + Guid.NewGuid().ToString("N")[..8]));

    public string Path { get; }

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
