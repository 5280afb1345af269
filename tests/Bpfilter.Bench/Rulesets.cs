using System.Text;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Bench;

/// <summary>
/// The benchmark's rulesets, each with the matching rule last (the worst case of a linear chain) and the same rules
/// in every tool's syntax. "pairs": rule i drops UDP from one host to one port, so rules differ in two fields, not
/// one; the last drops the generator's frames (from the generator's address to port 9999). "mixed": four rule shapes
/// in turn (TCP from a /24 to a port range, UDP to a host from a port, ICMP echo requests from a /20, UDP from outside
/// 10.0.0.0/8 to a port), accept and drop alternating, then the same last rule.
/// </summary>
internal static class Rulesets
{
    public const ushort MatchedPort = 9999;

    /// <summary>The source host and destination port of rule <paramref name="i"/> of <paramref name="n"/> pairs.</summary>
    public static (string Source, ushort Port) Pair(int i, int n) =>
        i == n - 1 ? (Topology.GeneratorAddress, MatchedPort) : ($"10.{(i >> 16) & 0xff}.{(i >> 8) & 0xff}.{(i & 0xff) | 1}", (ushort)(10000 + i % 50000));

    public static Rule[] Pairs(int n) => Enumerable.Range(0, n).Select(i =>
    {
        var (source, port) = Pair(i, n);
        return new Rule($"r{i}", new Match
        {
            Source = new AddressMatch([IpPrefix.Parse(source)]),
            Protocol = new ProtocolMatch(IpProtocol.Udp),
            DestinationPort = PortMatch.Single(port),
        }, Verdict.Drop);
    }).ToArray();

    public static Rule[] Mixed(int n) => Enumerable.Range(0, n).Select(i =>
    {
        if (i == n - 1) return new Rule($"m{i}", Pairs(1)[0].Match, Verdict.Drop);
        int k = i / 4;
        var verdict = i % 2 == 0 ? Verdict.Drop : Verdict.Accept;
        var match = (i % 4) switch
        {
            0 => new Match
            {
                Protocol = new ProtocolMatch(IpProtocol.Tcp),
                Source = new AddressMatch([IpPrefix.Parse($"10.{k >> 8 & 0xff}.{k & 0xff}.0/24")]),
                DestinationPort = new PortMatch([new PortRange((ushort)(1000 + k % 60000), (ushort)(1009 + k % 60000))]),
            },
            1 => new Match
            {
                Protocol = new ProtocolMatch(IpProtocol.Udp),
                Destination = new AddressMatch([IpPrefix.Parse($"192.168.{k >> 8 & 0xff}.{k & 0xff}")]),
                SourcePort = PortMatch.Single((ushort)(2000 + k % 60000)),
            },
            2 => new Match
            {
                Protocol = new ProtocolMatch(IpProtocol.Icmp),
                Source = new AddressMatch([IpPrefix.Parse($"172.{16 + (k >> 12 & 0xf)}.{(k >> 4) & 0xff}.{(k & 0xf) << 4}/28")]),
                IcmpType = new RangeMatch(8, 8),
            },
            _ => new Match
            {
                Protocol = new ProtocolMatch(IpProtocol.Udp),
                Source = new AddressMatch([IpPrefix.Parse("10.0.0.0/8")], negated: true),
                DestinationPort = PortMatch.Single((ushort)(20000 + k % 40000)),
            },
        };
        return new Rule($"m{i}", match, verdict);
    }).ToArray();

    /// <summary>The pairs as iptables-restore input for the filter table's INPUT chain.</summary>
    public static string IptablesRestore(int n)
    {
        var text = new StringBuilder("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n");
        for (int i = 0; i < n; i++)
        {
            var (source, port) = Pair(i, n);
            text.Append($"-A INPUT -s {source}/32 -p udp -m udp --dport {port} -j DROP\n");
        }
        return text.Append("COMMIT\n").ToString();
    }

    /// <summary>The pairs as one nft rule each, with a counter, in a table of the benchmark's own.</summary>
    public static string NftLinear(int n)
    {
        var text = new StringBuilder("table ip bench {\n chain input {\n  type filter hook input priority 0; policy accept;\n");
        for (int i = 0; i < n; i++)
        {
            var (source, port) = Pair(i, n);
            text.Append($"  ip saddr {source} udp dport {port} counter drop\n");
        }
        return text.Append(" }\n}\n").ToString();
    }

    /// <summary>The pairs as the elements of one concatenated set (address . port), looked up by one rule.</summary>
    public static string NftSet(int n)
    {
        var text = new StringBuilder("table ip bench {\n set pairs {\n  type ipv4_addr . inet_service\n");
        text.Append("  elements = { ");
        text.AppendJoin(", ", Enumerable.Range(0, n).Select(i => Pair(i, n)).Select(p => $"{p.Source} . {p.Port}"));
        text.Append(" }\n }\n chain input {\n  type filter hook input priority 0; policy accept;\n");
        return text.Append("  ip saddr . udp dport @pairs counter drop\n }\n}\n").ToString();
    }
}
