using Bpfilter.Engine.Formats.Iptables;
using Bpfilter.Engine.Rules;
using Bpfilter.Engine.Simulation;
using Xunit;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// iptables commands read as iptables reads them and run on <see cref="IptablesTable"/> as iptables runs them (the
/// listings themselves are compared with real iptables in <see cref="KernelIptablesCommandTests"/>).
/// </summary>
public sealed class IptablesCommandTests
{
    private static IptablesCommand Parse(string line, IpFamily family = IpFamily.Ipv4) =>
        IptablesCommand.Parse([.. IptablesCommandLine.Split(line).Single()], family);

    private static IptablesTable Table(params string[] lines)
    {
        var table = IptablesTable.Empty("bpft-table");
        foreach (var command in IptablesCommand.ParseLines(lines, IpFamily.Ipv4)) table.Run(command);
        return table;
    }

    private static string Rules(IptablesTable table, IpFamily family = IpFamily.Ipv4) => string.Join('\n', table.Run(Parse("-S", family)));

    private static BpfilterException Fails(IptablesTable table, string line, string id)
    {
        var before = Rules(table) + Rules(table, IpFamily.Ipv6);
        var error = Assert.ThrowsAny<BpfilterException>(() => table.Run(Parse(line)));
        Assert.Equal(id, error.ErrorId);
        Assert.Equal(before, Rules(table) + Rules(table, IpFamily.Ipv6));
        return error;
    }

    [Fact]
    public void Options_bundle_and_take_their_values_as_getopt_gives_them()
    {
        var list = Parse("-nvxL INPUT 2 --line-numbers");
        Assert.Equal((IptablesOperation.List, "INPUT", 2), (list.Operation, list.Chain, list.RuleNumber));
        Assert.Equal(new IptablesListOptions(Verbose: true, Numeric: true, Exact: true, LineNumbers: true), list.ListOptions);

        // A comment "-L" is the comment's value, not the list command; --option=value is two arguments.
        var append = Parse("-t filter -A INPUT -p tcp --dport=22 -m comment --comment -L -j ACCEPT -w 5");
        Assert.Equal(IptablesOperation.Append, append.Operation);
        Assert.Equal("-L: family ipv4 protocol tcp destination-port 22 -> accept", append.Rules.Single().ToString());

        var insert = Parse("-I INPUT 3 -s 10.0.0.1 -c 10 2000");
        Assert.Equal((3, (10UL, 2000UL)), (insert.RuleNumber!.Value, insert.Counters!.Value));
        Assert.Equal(IpFamily.Ipv6, Parse("-6 -A INPUT -s 2001:db8::1").Family);
        Assert.Equal(IpFamily.Ipv6, Parse("-A INPUT", IpFamily.Ipv6).Family);
        var listAndZero = Parse("-L INPUT -Z");
        Assert.True(listAndZero.ZeroAfterListing);
        Assert.Equal((IptablesOperation.List, "INPUT"), (listAndZero.Operation, listAndZero.Chain));
        Assert.Equal(IptablesOperation.Delete, Parse("-D INPUT 4").Operation);
        Assert.Empty(Parse("-D INPUT 4").Rules);
        Assert.Single(Parse("-D INPUT -j DROP").Rules);
    }

    [Theory]
    [InlineData("-t nat -A PREROUTING -j DNAT", "argument 2 (-t): the table 'nat'")]
    [InlineData("-L -A INPUT", "argument 2 (-A): -A cannot be combined with -L")]
    [InlineData("-A INPUT -n -j DROP", "argument 3 (-n): -n is an option of -L, not of -A")]
    [InlineData("-L -c 1 2", "argument 2 (-c): -c sets the counters of a rule that -A, -I or -R makes, not of -L")]
    [InlineData("-L -p tcp", "argument 2 (-p): -p is not an option of -L")]
    [InlineData("-R INPUT -j DROP", "argument 1 (-R): -R needs a chain and the number of the rule to replace")]
    [InlineData("-P INPUT REJECT", "argument 3 (-P): 'REJECT' is not a policy")]
    [InlineData("-N ACCEPT", "argument 2 (-N): 'ACCEPT' is the name of an iptables target")]
    [InlineData("-N thisnameiswaytoolongforiptablesx", "longer than iptables' 28 characters")]
    [InlineData("-D INPUT 0", "argument 3 (-D): '0' is not a rule number")]
    [InlineData("-h", "argument 1 (-h): -h is not supported")]
    [InlineData("-4 -6 -L", "argument 2 (-6): -4 and -6 are both given")]
    [InlineData("-v", "no command given")]
    [InlineData("-A", "argument 1 (-A): -A needs a chain name")]
    public void A_command_iptables_would_refuse_or_Bpfilter_does_not_run_is_an_error_naming_the_argument(string line, string message)
    {
        var error = Assert.ThrowsAny<BpfilterException>(() => Parse(line));
        Assert.Equal("IptablesCommandInvalid", error.ErrorId);
        Assert.Contains(message, error.Message);
    }

    [Theory]
    [InlineData("-A INPUT -p tcp --dport 22 --foo 1 -j ACCEPT", "argument 7 (--foo): --foo is not an option bpfilter reads")]
    [InlineData("-A INPUT -m owner --uid-owner 0 -j ACCEPT", "argument 4 (-m): -m owner: the match module 'owner' is not supported")]
    [InlineData("-I INPUT 2 -p udp --dport 99999 -j DROP", "argument 7 (--dport): '99999' is not a port number")]
    [InlineData("-A OUTPUT -i eth0 -j DROP", "argument 3 (-i): OUTPUT sees packets this host sends")]
    [InlineData("-A INPUT -j MASQUERADE", "argument 4 (-j): -j MASQUERADE: the target MASQUERADE is not supported")]
    public void An_unsupported_rule_option_is_an_IptablesRuleInvalid_naming_it_at_its_place_in_the_command(string line, string message)
    {
        var error = Assert.ThrowsAny<BpfilterException>(() => Parse(line));
        Assert.Equal("IptablesRuleInvalid", error.ErrorId);
        Assert.Contains(message, error.Message);
    }

    [Fact]
    public void Address_lists_make_one_rule_per_pair_sources_outermost_and_service_names_read_from_the_services_file()
    {
        var append = Parse("-A INPUT -s 10.0.0.1,10.0.0.2 -d 192.0.2.1,192.0.2.2 -p tcp --dport ssh -j DROP");
        Assert.Equal(["10.0.0.1 192.0.2.1", "10.0.0.1 192.0.2.2", "10.0.0.2 192.0.2.1", "10.0.0.2 192.0.2.2"],
            append.Rules.Select(r => $"{r.Match.Source} {r.Match.Destination}"));
        if (IptablesNameLookup.System.TryParseService("ssh", 6, out var ssh))
            Assert.All(append.Rules, r => Assert.Equal(ssh, r.Match.DestinationPort!.Ranges[0].First));
        var error = Assert.ThrowsAny<BpfilterException>(() => Parse("-R INPUT 1 -s 10.0.0.1,10.0.0.2 -j DROP"));
        Assert.Contains("-R replaces one rule", error.Message);
    }

    [Fact]
    public void Script_lines_split_as_the_shell_splits_them_and_name_their_line_in_errors()
    {
        var commands = IptablesCommand.ParseLines(
        [
            "# a firewall",
            "iptables -A INPUT -m comment --comment 'my rule' -j ACCEPT   # trailing comment",
            "",
            "/usr/sbin/ip6tables -P INPUT DROP; ip6tables -A INPUT -p tcp --dport 22 -m comment --comment \"a \\\"quoted\\\" one\" -j ACCEPT",
        ], IpFamily.Ipv4);
        Assert.Equal(3, commands.Count);
        Assert.Equal("my rule", commands[0].Rules[0].Name);
        Assert.Equal((IpFamily.Ipv6, IptablesOperation.Policy), (commands[1].Family, commands[1].Operation));
        Assert.Equal("a \"quoted\" one", commands[2].Rules[0].Name);
        Assert.Equal("-A INPUT -m comment --comment 'my rule' -j ACCEPT", commands[0].ToString());

        var expansion = Assert.ThrowsAny<BpfilterException>(() => IptablesCommand.ParseLines(["iptables -A INPUT -s 10.0.0.1", "iptables -A INPUT -s $ADMIN -j ACCEPT"], IpFamily.Ipv4, "rules.sh"));
        Assert.Equal("IptablesCommandInvalid", expansion.ErrorId);
        Assert.StartsWith("rules.sh 2: column 22: '$' is shell syntax", expansion.Message);
        var rule = Assert.ThrowsAny<BpfilterException>(() => IptablesCommand.ParseLines(["iptables -A INPUT -p tcp --dport 70000"], IpFamily.Ipv4, "rules.sh"));
        Assert.Equal(("IptablesRuleInvalid", true), (rule.ErrorId, rule.Message.StartsWith("rules.sh 1: argument 6 (--dport)", StringComparison.Ordinal)));
        var batch = Assert.ThrowsAny<BpfilterException>(() => IptablesCommand.ParseBatch(["-L", ";", "-A", "INPUT", "-x"], IpFamily.Ipv4));
        Assert.StartsWith("command 2 (-A INPUT -x): argument 3 (-x)", batch.Message);
    }

    [Fact]
    public void Rule_numbers_count_one_family_and_changes_land_where_iptables_puts_them()
    {
        var table = Table(
            "-A INPUT -p tcp --dport 22 -j ACCEPT",
            "ip6tables -A INPUT -p tcp --dport 22 -j ACCEPT",
            "-A INPUT -p tcp --dport 80 -j ACCEPT",
            "-I INPUT 2 -s 10.0.0.1,10.0.0.2 -j DROP",
            "ip6tables -I INPUT 1 -p udp -j DROP",
            "-D INPUT 1",
            "-R INPUT 3 -p tcp --dport 443 -j ACCEPT",
            "-D INPUT -s 10.0.0.1 -j DROP");
        Assert.Equal("-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n-A INPUT -s 10.0.0.2/32 -j DROP\n-A INPUT -p tcp -m tcp --dport 443 -j ACCEPT", Rules(table));
        Assert.Equal("-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n-A INPUT -p udp -j DROP\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT", Rules(table, IpFamily.Ipv6));
        Fails(table, "-D INPUT 3", "RulePositionOutOfRange");
        Fails(table, "-I INPUT 4 -j DROP", "RulePositionOutOfRange");
        Fails(table, "-R INPUT 3 -j DROP", "RulePositionOutOfRange");
        Fails(table, "-D INPUT -p tcp --dport 22 -j ACCEPT", "RuleNotFound");
        Fails(table, "-C INPUT -j DROP", "RuleNotFound");
        table.Run(Parse("-C INPUT -s 10.0.0.2 -j DROP"));
        table.Run(Parse("-I INPUT 3 -j DROP"));
        Assert.EndsWith("-A INPUT -j DROP", Rules(table));
    }

    [Fact]
    public void User_chains_are_made_renamed_and_deleted_as_iptables_allows_and_a_repeated_comment_shows_as_typed()
    {
        var table = Table(
            "-N WEB",
            "-A WEB -p tcp --dport 80 -m comment --comment web -j ACCEPT",
            "-A WEB -p tcp --dport 443 -m comment --comment web -j ACCEPT",
            "-A INPUT -j WEB",
            "-E WEB HTTP");
        Assert.Equal("-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n-N HTTP\n-A INPUT -j HTTP\n"
            + "-A HTTP -p tcp -m tcp --dport 80 -m comment --comment web -j ACCEPT\n-A HTTP -p tcp -m tcp --dport 443 -m comment --comment web -j ACCEPT", Rules(table));
        table.Run(Parse("-D HTTP -p tcp --dport 443 -m comment --comment web -j ACCEPT"));
        Fails(table, "-N HTTP", "ChainExists");
        Fails(table, "-N INPUT", "IptablesCommandInvalid");
        Fails(table, "-E HTTP INPUT", "IptablesCommandInvalid");
        Fails(table, "-X HTTP", "ChainInUse");
        Fails(table, "-A INPUT -j NOPE", "ChainNotFound");
        Fails(table, "-L NOPE", "ChainNotFound");
        Fails(table, "-A HTTP -j HTTP", "IptablesCommandInvalid");
        Fails(table, "-X INPUT", "IptablesCommandInvalid");
        Fails(table, "-P HTTP DROP", "IptablesCommandInvalid");
        Fails(table, "-A INPUT -m comment --comment '(ip6tables policy)'", "IptablesRuleInvalid");
        Fails(table, "-6 -A INPUT -j RETURN", "IptablesRuleInvalid");
        table.Run(Parse("-F HTTP"));
        Fails(table, "-X HTTP", "ChainInUse");
        table.Run(Parse("-D INPUT -j HTTP"));
        table.Run(Parse("-X"));
        Assert.Equal("-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT", Rules(table));
    }

    [Fact]
    public void Each_family_keeps_its_policy_and_the_ruleset_decides_each_familys_packets_by_its_own()
    {
        var table = Table("-P INPUT DROP", "-A INPUT -p tcp --dport 22 -j ACCEPT", "ip6tables -A INPUT -p tcp --dport 80 -j DROP");
        var (ruleset, counters) = table.ToRuleset();
        var input = ruleset.Chains.Single(c => c.Name == "INPUT");
        Assert.Equal((Hook.NfInput, Verdict.Drop), (input.Hook, input.Policy));
        Assert.Equal(new Rule(IptablesTable.Ip6PolicyRuleName, new Match { Family = IpFamily.Ipv6 }, Verdict.Accept), input.Rules[^1]);
        Assert.Equal(["INPUT", "FORWARD", "OUTPUT"], ruleset.Chains.Select(c => c.Name));
        Assert.All(counters.Values, c => Assert.Equal(TableCounter.Zero, c));

        var simulator = new ChainSimulator(input);
        PacketDecision Run(string source, string destination, ushort port) => simulator.Run(PacketBuilder.Build(
            new PacketFields { Source = source, Destination = destination, Protocol = IpProtocol.Tcp, DestinationPort = port }, simulator.Layer)).Decision;
        Assert.Equal((Verdict.Drop, Decider.Policy), (Run("192.0.2.1", "192.0.2.2", 443).Verdict, Run("192.0.2.1", "192.0.2.2", 443).DecidedBy));
        Assert.Equal(Verdict.Accept, Run("192.0.2.1", "192.0.2.2", 22).Verdict);
        Assert.Equal((Verdict.Accept, IptablesTable.Ip6PolicyRuleName), (Run("2001:db8::1", "2001:db8::2", 443).Verdict, Run("2001:db8::1", "2001:db8::2", 443).Rule));
        Assert.Equal(Verdict.Drop, Run("2001:db8::1", "2001:db8::2", 80).Verdict);

        // Read back, the same table for both families.
        var again = IptablesTable.FromRuleset(ruleset);
        Assert.Equal(Rules(table), Rules(again));
        Assert.Equal(Rules(table, IpFamily.Ipv6), Rules(again, IpFamily.Ipv6));
    }

    [Fact]
    public void Counters_go_on_for_kept_rules_and_start_at_zero_for_replaced_and_zeroed_ones()
    {
        var (ruleset, _) = Table("-A INPUT -p tcp --dport 22 -j ACCEPT", "-A INPUT -p tcp --dport 80 -j ACCEPT", "-A INPUT -p tcp --dport 443 -j ACCEPT").ToRuleset();
        var table = IptablesTable.FromRuleset(ruleset, c => new IptablesCounts((ulong)(c.Rule ?? 9) + 1, 100));
        Assert.Contains("-A INPUT -p tcp -m tcp --dport 80 -c 2 100 -j ACCEPT", table.Run(Parse("-S -v")));
        foreach (var line in new[] { "-I INPUT -p udp -j DROP -c 7 700", "-R INPUT 3 -p tcp --dport 8080 -j ACCEPT", "-Z INPUT 4" }) table.Run(Parse(line));
        var (_, counters) = table.ToRuleset();
        Assert.Equal(new TableCounter(new IptablesCounts(7, 700), null), counters[new RulesetCounter("INPUT", 0)]);
        Assert.Equal(new RulesetCounter("INPUT", 0), counters[new RulesetCounter("INPUT", 1)].From);
        Assert.Equal(TableCounter.Zero, counters[new RulesetCounter("INPUT", 2)]);
        Assert.Equal(TableCounter.Zero, counters[new RulesetCounter("INPUT", 3)]);
        Assert.Equal(new RulesetCounter("INPUT", null), counters[new RulesetCounter("INPUT", null)].From);
        Assert.Equal([new RulesetCounter("INPUT", 2)], table.Zeroed);
    }

    [Fact]
    public void A_deployment_with_chains_iptables_does_not_have_is_IptablesInexpressible()
    {
        var ruleset = new Ruleset("bpft-yaml", [new Chain("IN", Hook.Xdp, "eth0", Verdict.Accept, [])]);
        var error = Assert.ThrowsAny<BpfilterException>(() => IptablesTable.FromRuleset(ruleset));
        Assert.Equal("IptablesInexpressible", error.ErrorId);
        Assert.Contains("has only INPUT, FORWARD and OUTPUT", error.Message);
    }

    [Fact]
    public void A_placement_moves_a_built_in_chain_and_a_later_change_keeps_it_there()
    {
        var placed = new IptablesSaveOptions(new Dictionary<string, ChainPlacement> { ["INPUT"] = ChainPlacement.Parse("xdp:eth1:generic") });
        var (ruleset, _) = Table("-A INPUT -d 10.0.0.4/32 -j DROP").ToRuleset(placed);
        var input = ruleset.Chains.Single(c => c.Name == "INPUT");
        Assert.Equal((Hook.Xdp, "eth1", XdpMode.Generic), (input.Hook, input.Interface, input.Mode));
        var again = IptablesTable.FromRuleset(ruleset);
        again.Run(Parse("-A INPUT -j ACCEPT"));
        Assert.Equal("xdp on eth1", again.ToRuleset().Ruleset.Chains.Single(c => c.Name == "INPUT").AttachPoint);
    }

    [Theory]
    [InlineData(60, RateUnit.Minute, "1/sec")]
    [InlineData(120, RateUnit.Hour, "2/min")]
    [InlineData(7, RateUnit.Minute, "7/min")]
    [InlineData(24, RateUnit.Day, "1/hour")]
    [InlineData(7, RateUnit.Hour, "7/hour")]
    [InlineData(10000, RateUnit.Second, "10000/sec")]
    [InlineData(13, RateUnit.Second, "13/sec")]
    public void Limits_list_in_the_unit_iptables_prints(uint count, RateUnit unit, string listed) =>
        Assert.Equal(listed, IptablesRuleFormatter.ListedRate(new LimitMatch(count, unit)));
}
