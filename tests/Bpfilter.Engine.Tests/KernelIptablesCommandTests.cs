using System.Diagnostics;
using System.Text.RegularExpressions;
using Bpfilter.Engine.Deployment;
using Bpfilter.Engine.Formats.Iptables;
using Bpfilter.Engine.Rules;
using Xunit;
using Xunit.Abstractions;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// The same iptables commands typed into real iptables 1.8 (iptables-nft, Debian's iptables, and iptables-legacy,
/// each in a sandbox's receiver namespace) and into Bpfilter's (<see cref="IptablesDeployment"/>, published in a third
/// sandbox's receiver), the same UDP datagrams sent into all: iptables -S, -S -v and -L in several forms print the
/// same lines, counters included. iptables-nft counts no packets for policies (it prints 0), and iptables-legacy
/// forgets a chain's policy count whenever the chain changes: so policy counts are compared with iptables-legacy
/// where it has not forgotten them, and everything else with both. The receivers' veth ends are renamed alike, so
/// rules can name them.
/// </summary>
[Collection("kernel")]
public sealed partial class KernelIptablesCommandTests : IDisposable
{
    private const string In = "bpftin";
    private static readonly string[] Listings = ["-S", "-S -v", "-L -n -v -x --line-numbers", "-L -v", "-L -n", "-L --line-numbers"];

    private readonly ITestOutputHelper _output;
    private readonly Sandbox _iptables = new(), _legacy = new(), _bpfilter = new();
    private readonly string _deployment;
    private int _commands, _lines;

    public KernelIptablesCommandTests(ITestOutputHelper output)
    {
        _output = output;
        _deployment = $"bpft-{_bpfilter.Id}";
        foreach (var sandbox in Sandboxes)
        {
            Sandbox.Ip("-n", sandbox.Receiver, "link", "set", "dev", sandbox.ReceiverInterface, "down");
            Sandbox.Ip("-n", sandbox.Receiver, "link", "set", "dev", sandbox.ReceiverInterface, "name", In);
            Sandbox.Ip("-n", sandbox.Receiver, "link", "set", "dev", In, "up");
            sandbox.AddSenderAddress("10.201.0.7");
        }
    }

    public void Dispose()
    {
        if (Deployments.Names().Contains(_deployment)) Deployments.Unpublish(_deployment);
        foreach (var sandbox in Sandboxes) sandbox.Dispose();
    }

    private Sandbox[] Sandboxes => [_iptables, _legacy, _bpfilter];

    [Fact]
    public void A_script_of_mixed_commands_lists_as_iptables_lists_it_and_the_same_datagrams_count_the_same()
    {
        // Every port a datagram goes to has a socket, so no ICMP error goes out (its rate limit would differ by timing).
        int[] ports = [7001, 7002, 7003, 7004, 7005, 7006, 7007, 7008, 7009];
        var sockets = ports.SelectMany(p => Sandboxes.Select(s => s.BindUdp(p))).ToList();
        try
        {
            Apply(batch: true,
                $"-t filter -A INPUT -i {In} -d 10.201.0.2/32 -p udp --dport 7001 -j DROP",
                "-A INPUT -p udp --dport 7002 -j ACCEPT",
                "-N WEB",
                "-N OTHER",
                "-A INPUT -p udp -m multiport --dports 7003,7004 -j WEB",
                "-A WEB -s 10.201.0.7/32 -j RETURN",
                "-A WEB -p udp --dport 7003 -m comment --comment 'web 7003' -j ACCEPT",
                "-A WEB -j DROP",
                "-A INPUT -p udp --dport 7005 -m length --length 0:60 -j ACCEPT",
                "-A INPUT -p udp --dport 7005 -j DROP",
                "-A INPUT -s 10.201.0.0/24,10.202.0.0/24 -p udp --dport 7009 -m comment --comment twice",
                "-A OUTPUT -o lo -j ACCEPT",
                "-A FORWARD -j OTHER",
                "-P FORWARD DROP");
            Round();
            Compare("after the first batch", legacyPolicies: true);

            Apply(batch: false,
                "-I INPUT 2 -p udp --dport 7006 -j DROP",
                $"-R INPUT 1 -i {In} -d 10.201.0.2/32 -p udp --dport 7001 -j ACCEPT",
                "-D INPUT -p udp --dport 7002 -j ACCEPT",
                "-E WEB WWW",
                "-A INPUT -p udp --dport 7007 -g WWW",
                "-D FORWARD -j OTHER",
                "-X OTHER");
            Round();
            Compare("after single commands", legacyPolicies: false);

            Apply(batch: true,
                "-Z INPUT 3",
                "-N TMP",
                "-A TMP -j ACCEPT",
                "-F TMP",
                "-X TMP",
                "-D INPUT 2",
                "-P INPUT DROP",
                "-A INPUT -p udp --dport 7008 -m ttl --ttl-gt 10 -j ACCEPT",
                "-I INPUT -s 10.201.0.7/32 -p udp --dport 7009 -j ACCEPT",
                "-A INPUT -p udp --dport 7002 -j ACCEPT",
                "-I WWW 2 -p udp --dport 7004 -s 10.201.0.1 -j ACCEPT");
            Round();
            Compare("after the second batch", legacyPolicies: false);

            Apply(batch: false, "-Z WWW");
            Compare("after -Z of a user chain, zeroed in place", legacyPolicies: false);
            Round();
            Apply(batch: true, "-F FORWARD", "-P FORWARD ACCEPT", "-A FORWARD -j DROP");
            Round();
            Compare("after a batch that changed FORWARD only", legacyPolicies: false);
            Apply(batch: false, "-Z");
            Round();
            Compare("after -Z of every chain and one more round", legacyPolicies: true);
            _output.WriteLine($"{_commands} commands run on iptables-nft, iptables-legacy and Bpfilter; {_lines} listed lines of Bpfilter compared with each, all equal");
            Assert.True(_commands >= 30 && _lines > 300, $"only {_commands} commands and {_lines} lines were compared");
        }
        finally
        {
            foreach (var socket in sockets) socket.Dispose();
        }
    }

    [Theory]
    [InlineData(IpFamily.Ipv4)]
    [InlineData(IpFamily.Ipv6)]
    public void Every_match_and_target_lists_as_iptables_lists_it(IpFamily family)
    {
        // Matches in the order iptables -S prints them when typed so (the rules model keeps no order of its own).
        string[] v4 =
        [
            "-A INPUT -s 10.1.2.0/24,10.9.9.9 -j ACCEPT",
            "-A FORWARD ! -i eth0 ! -o eth1 ! -p udp -j ACCEPT",
            "-A FORWARD -i verylongname15c -o eth2 -p udp -j ACCEPT",
            "-A INPUT -f -j DROP", "-A INPUT ! -f -j DROP",
            "-A INPUT -p tcp ! --sport 1:1023 ! --dport 8080 -j DROP",
            "-A INPUT -p tcp -m multiport ! --sports 1,2,3:5 -j DROP",
            "-A INPUT -p udp -m multiport --dports 53,1000:2000 -j DROP",
            "-A INPUT -m iprange --src-range 10.0.0.1-10.0.0.9 ! --dst-range 10.1.0.1-10.1.0.200 -j DROP",
            "-A INPUT -m length ! --length 100 -j DROP", "-A INPUT -m length --length 100:65535 -j DROP",
            "-A INPUT -m dscp --dscp 0x10 -j DROP", "-A INPUT -m dscp ! --dscp-class EF -j DROP",
            "-A INPUT -m ttl --ttl-eq 64 -j DROP", "-A INPUT -m ttl ! --ttl-eq 64 -j DROP", "-A INPUT -m ttl --ttl-lt 10 -j DROP",
            "-A INPUT -m mark --mark 0x10 -j DROP", "-A INPUT -m mark ! --mark 16/0xf0 -j DROP",
            "-A INPUT -m limit --limit 3/min --limit-burst 10 -j DROP", "-A INPUT -m limit --limit 100/hour -j DROP",
            "-A INPUT -m limit --limit 2/day -j DROP", "-A INPUT -m limit -j DROP", "-A INPUT -m limit --limit 60/min -j DROP",
            "-A INPUT -m limit --limit 7/hour -j DROP", "-A INPUT -m limit --limit 1440/day -j DROP",
            "-A INPUT -p icmp --icmp-type 3/4 -j DROP", "-A INPUT -p icmp ! --icmp-type echo-reply -j DROP",
            "-A INPUT -p icmp ! --icmp-type 44 -j DROP", "-A INPUT -p icmp --icmp-type 44 -j DROP",
            "-A INPUT -p icmp --icmp-type 3/99 -j DROP", "-A INPUT -p icmp --icmp-type 11/1 -j DROP",
            "-A INPUT -p icmp --icmp-type time-exceeded -j DROP", "-A INPUT -p icmp --icmp-type redirect -j DROP",
            "-A INPUT -p tcp --tcp-flags ALL NONE -j DROP", "-A INPUT -p tcp ! --syn -j DROP",
            "-A INPUT -p tcp --tcp-flags SYN,ACK ACK -j DROP", "-A INPUT -p tcp --sport 0:1023 -j DROP",
            "-A INPUT -p tcp --dport 1024: -j DROP", "-A INPUT -p udp --sport 53 --dport 53 -j DROP",
            "-A INPUT -p udp --dport 0 -j DROP", "-A INPUT -p tcp --dport ssh -j ACCEPT", "-A INPUT -p tcp --syn --dport 22",
            "-A INPUT -p tcp -j REJECT --reject-with tcp-reset", "-A INPUT -j REJECT --reject-with icmp-net-unreachable",
            "-A INPUT -j REJECT", "-A INPUT -j LOG", "-A INPUT -j LOG --log-prefix 'a \"q\" b'", "-A INPUT -j LOG --log-prefix DROP:",
            "-A INPUT -m comment --comment 'x\"y' -j ACCEPT", "-A INPUT -m comment --comment plain -j ACCEPT",
            "-A INPUT -m comment --comment plain -j DROP",
            "-A INPUT -p 47 -j DROP", "-A INPUT -p sctp -j DROP", "-A INPUT -p 200 -j DROP", "-A INPUT -p 135 -j DROP",
            "-A INPUT -d 0.0.0.0/0 -j DROP", "-A INPUT -s 192.168.0.0/255.255.0.0 -j DROP", "-A INPUT -s 127.0.0.1 -j DROP",
            "-A INPUT -s 169.254.0.0/16 -j DROP", "-A INPUT -s 127.0.0.0/8 -j DROP",
            "-A INPUT -s 10.0.0.0/8 -d 10.0.0.0/9 -p tcp -m limit --limit 1/s -m comment --comment c1 -j ACCEPT",
            "-N zeta", "-N alpha", "-N Mid", "-A FORWARD -j zeta", "-A FORWARD -j alpha", "-A INPUT -j alpha",
            "-A alpha -g zeta", "-A alpha -s 1.2.3.4 -d 5.6.7.8", "-A INPUT -p tcp --dport 22 -g zeta",
            "-A INPUT -p tcp --dport 80 -m ttl --ttl-eq 3 -c 5 6", "-A INPUT -c 123456 99999999 -j ACCEPT",
            "-A INPUT -c 99999 100000 -j ACCEPT", "-A INPUT -c 100000 999999 -j ACCEPT",
            "-A INPUT -c 9999999 99999999999 -j ACCEPT", "-A INPUT -c 1234567890123 123456789012345678 -j ACCEPT",
            "-I INPUT 3 -s 1.1.1.1,2.2.2.2 -d 3.3.3.3,4.4.4.4 -j DROP", "-D INPUT -s 2.2.2.2 -d 3.3.3.3 -j DROP",
            "-P FORWARD DROP",
        ];
        string[] v6 =
        [
            "-A INPUT -s 2001:db8::/32 -d ::1 -p tcp --dport 22 -j ACCEPT",
            "-A INPUT ! -s 2001:db8::1 -p ipv6-icmp --icmpv6-type echo-request -j ACCEPT",
            "-A INPUT -p icmpv6 --icmpv6-type 1/3 -j ACCEPT", "-A INPUT -p icmpv6 ! --icmpv6-type 135 -j ACCEPT",
            "-A INPUT -p icmpv6 --icmpv6-type 136 -j ACCEPT", "-A INPUT -p icmpv6 --icmpv6-type 2 -j ACCEPT",
            "-A INPUT -p icmpv6 --icmpv6-type 77 -j ACCEPT", "-A INPUT -p icmpv6 --icmpv6-type 4/2 -j ACCEPT",
            "-A INPUT -m hl --hl-gt 5 -j REJECT", "-A INPUT -m hl ! --hl-eq 5 -j DROP",
            "-A INPUT -i eth0 -p udp -j REJECT --reject-with icmp6-adm-prohibited", "-A INPUT -p tcp -j REJECT --reject-with tcp-reset",
            "-A INPUT -s fe80::1234:5678:9abc:def0/128 -d 2001:0db8:1111:2222:3333:4444:5555:6666 -j DROP",
            "-A INPUT -s fe80::/10 -d ::/0 -j DROP", "-A INPUT -m length --length 0:100 -j DROP",
            "-P INPUT DROP", "-N CH", "-A CH -p udp -m multiport --dports 1,2,3 -j RETURN", "-A OUTPUT -j CH",
        ];
        var tool = family == IpFamily.Ipv6 ? "ip6tables" : "iptables";
        // A namespace with no interface up: no packet (IPv6 neighbour discovery, say) counts in iptables' table.
        var quiet = $"bpft-{_bpfilter.Id}-q";
        Sandbox.Ip("netns", "add", quiet);
        try
        {
            CompareListings(family, tool, quiet, family == IpFamily.Ipv6 ? v6 : v4);
        }
        finally
        {
            Sandbox.Ip("netns", "delete", quiet);
        }
    }

    private void CompareListings(IpFamily family, string tool, string ns, string[] script)
    {
        var table = IptablesTable.Empty(_deployment);
        foreach (var line in script)
        {
            var words = Words(line);
            RealIptables(ns, tool, words);
            foreach (var command in IptablesCommand.ParseBatch(words, family)) table.Run(command);
        }
        int lines = 0;
        foreach (var listing in new[] { "-S", "-S -v", "-L", "-L -n", "-L -v", "-L -n -v", "-L -v -x", "-L -n -v -x --line-numbers", "-L --line-numbers", "-L INPUT 3 -v", "-S INPUT 3" })
        {
            var real = RealIptables(ns, tool, Words(listing));
            var ours = table.Run(IptablesCommand.Parse(Words(listing), family));
            Assert.Equal(real, ours);
            lines += real.Count;
        }
        _output.WriteLine($"{tool}: {script.Length} commands, {lines} listed lines, all equal");
    }

    /// <summary>Runs each command on real iptables and on Bpfilter, in one batch or one by one.</summary>
    private void Apply(bool batch, params string[] lines)
    {
        foreach (var line in lines)
        {
            RealIptables(_iptables.Receiver, "iptables", Words(line));
            RealIptables(_legacy.Receiver, "iptables-legacy", Words(line));
        }
        var commands = lines.Select(l => IptablesCommand.Parse(Words(l), IpFamily.Ipv4)).ToList();
        foreach (var group in batch ? [commands] : commands.Select(c => new List<IptablesCommand> { c }))
            IptablesDeployment.Run(_deployment, group, new PublishOptions(_bpfilter.Receiver));
        _commands += lines.Length;
    }

    /// <summary>The same datagrams into every receiver: from .1 and .7, small and large, to every port.</summary>
    private void Round()
    {
        foreach (var sandbox in Sandboxes)
        {
            for (int port = 7001; port <= 7009; port++)
            {
                sandbox.SendUdp(port, 2 + port % 3);
                sandbox.SendUdp(port, 1, from: "10.201.0.7", payload: 100);
            }
        }
        Thread.Sleep(200); // the receivers take the datagrams off their veth backlogs in softirq time
    }

    /// <summary>
    /// Every listing of Bpfilter against iptables-nft's, policy counts aside, and against iptables-legacy's, policy
    /// counts too when <paramref name="legacyPolicies"/> says legacy still has them.
    /// </summary>
    private void Compare(string when, bool legacyPolicies)
    {
        foreach (var listing in Listings)
        {
            var ours = IptablesDeployment.Run(_deployment, [IptablesCommand.Parse(Words(listing), IpFamily.Ipv4)]).Output;
            var nft = RealIptables(_iptables.Receiver, "iptables", Words(listing));
            var legacy = RealIptables(_legacy.Receiver, "iptables-legacy", Words(listing));
            AssertSame($"iptables {listing} {when}", nft.Select(WithoutPolicyCounts), ours.Select(WithoutPolicyCounts));
            AssertSame($"iptables-legacy {listing} {when}", legacyPolicies ? legacy : legacy.Select(WithoutPolicyCounts), legacyPolicies ? ours : ours.Select(WithoutPolicyCounts));
            _lines += ours.Count;
        }
    }

    private static void AssertSame(string what, IEnumerable<string> real, IEnumerable<string> ours) =>
        Assert.True(real.SequenceEqual(ours), $"{what}:\n--- iptables\n{string.Join('\n', real)}\n--- Bpfilter\n{string.Join('\n', ours)}");

    private static string WithoutPolicyCounts(string line) =>
        PolicyCounts().Replace(PolicyRuleCounts().Replace(line, "$1 -c _ _"), "(policy $1 _ packets, _ bytes)");

    [GeneratedRegex(@"\(policy (\w+) \S+ packets, \S+ bytes\)")]
    private static partial Regex PolicyCounts();

    [GeneratedRegex(@"^(-P \S+ \w+) -c \d+ \d+$")]
    private static partial Regex PolicyRuleCounts();

    private static List<string> Words(string line) => [.. IptablesCommandLine.Split(line).Single()];

    /// <summary>The lines (ip6)iptables prints in the namespace; its failure fails the test.</summary>
    private static List<string> RealIptables(string ns, string tool, IReadOnlyList<string> args)
    {
        var start = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "netns", "exec", ns, tool }.Concat(args)) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{tool} {string.Join(' ', args)} failed ({process.ExitCode}): {error.Trim()}");
        return [.. output.Result.Split('\n').SkipLast(1)];
    }
}
