using Bpfilter.Engine.Rules;
using Bpfilter.Engine.Simulation;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// Seeded generators of whole rulesets in the full rule language (IPv4 and IPv6 rules, lists, ranges, negations, sets,
/// user chains with jump, goto and return, continue, log, limit, reject where the hook answers) and of packets that
/// meet them often (small pools of addresses and ports, both families, extension headers, fragments, flags).
/// Interfaces and marks are left out: BPF_PROG_TEST_RUN cannot give a packet either (their own tests cover them).
/// </summary>
public sealed class LanguageGenerators(int seed)
{
    private readonly Random _random = new(seed);
    private static readonly string[] V4 = ["10.0.0.1", "10.0.0.200", "10.1.2.3", "192.168.1.1", "172.16.0.5", "203.0.113.9"];
    private static readonly string[] V6 = ["2001:db8::1", "2001:db8::200", "2001:db8:1::5", "fe80::1", "2001:db8:ffff::9"];
    private static readonly ushort[] Ports = [22, 53, 80, 443, 1000, 1005, 8080, 40000];
    private static readonly IpProtocol[] Protocols = [IpProtocol.Tcp, IpProtocol.Udp, IpProtocol.Icmp, IpProtocol.Icmpv6, new(47)];

    private bool Chance(double p) => _random.NextDouble() < p;

    /// <summary>Whether the ruleset being made may match on connection state (its hook knows it).</summary>
    private bool _conntrack;
    private T Pick<T>(IReadOnlyList<T> items) => items[_random.Next(items.Count)];

    private IpPrefix Prefix(IpFamily family)
    {
        var address = IpPrefix.Parse(Pick(family == IpFamily.Ipv4 ? V4 : V6));
        int length = family == IpFamily.Ipv4 ? Pick([0, 8, 16, 24, 32, 32]) : Pick([0, 32, 48, 64, 128, 128]);
        var mask = length == 0 ? UInt128.Zero : (UInt128.MaxValue << (address.Bits - length)) & (address.Bits == 32 ? uint.MaxValue : UInt128.MaxValue);
        return new IpPrefix(family, address.Address & mask, length);
    }

    private AddressMatch Addresses(IpFamily family, IReadOnlyList<NamedSet> sets)
    {
        var usable = sets.Where(s => s.Family == family).ToList();
        if (usable.Count > 0 && Chance(0.25)) return AddressMatch.InSet(Pick(usable).Name, Chance(0.3));
        return new AddressMatch(Enumerable.Range(0, Chance(0.3) ? _random.Next(2, 4) : 1).Select(_ => Prefix(family)), Chance(0.25));
    }

    private PortMatch PortCondition(IReadOnlyList<NamedSet> sets)
    {
        var usable = sets.Where(s => s.Type == SetType.Port).ToList();
        if (usable.Count > 0 && Chance(0.25)) return PortMatch.InSet(Pick(usable).Name, Chance(0.3));
        var ranges = Enumerable.Range(0, Chance(0.3) ? _random.Next(2, 4) : 1).Select(_ =>
        {
            ushort first = Pick(Ports);
            return Chance(0.3) ? new PortRange(first, (ushort)Math.Min(65535, first + _random.Next(0, 10))) : new PortRange(first, first);
        });
        return new PortMatch(ranges, Chance(0.25));
    }

    public Match Match(IReadOnlyList<NamedSet> sets)
    {
        IpFamily? family = Chance(0.7) ? (Chance(0.6) ? IpFamily.Ipv4 : IpFamily.Ipv6) : null;
        var protocol = Chance(0.6) ? Pick(Protocols) : (IpProtocol?)null;
        if (protocol == IpProtocol.Icmp && family == IpFamily.Ipv6 || protocol == IpProtocol.Icmpv6 && family == IpFamily.Ipv4) protocol = IpProtocol.Udp;
        var match = new Match { Protocol = protocol is { } p ? new ProtocolMatch(p, Chance(0.1)) : null };
        if (family is { } f)
        {
            if (Chance(0.4)) match = match with { Source = Addresses(f, sets) };
            if (Chance(0.4)) match = match with { Destination = Addresses(f, sets) };
            if (match.Source is null && match.Destination is null) match = match with { Family = f };
            if (f == IpFamily.Ipv4 && Chance(0.1)) match = match with { Ttl = new RangeMatch(1, (uint)_random.Next(1, 128), Chance(0.2)) };
            if (f == IpFamily.Ipv6 && Chance(0.1)) match = match with { HopLimit = new RangeMatch(1, (uint)_random.Next(1, 128), Chance(0.2)) };
        }
        if (match.Protocol is { Negated: false, Protocol.HasPorts: true })
        {
            if (Chance(0.3)) match = match with { SourcePort = PortCondition(sets) };
            if (Chance(0.5)) match = match with { DestinationPort = PortCondition(sets) };
        }
        if (match.Protocol is { Negated: false, Protocol.Number: 6 } && Chance(0.3))
            match = match with { TcpFlags = Chance(0.5) ? TcpFlagsMatch.Syn : new TcpFlagsMatch(TcpFlags.Syn | TcpFlags.Ack, TcpFlags.Ack, Chance(0.3)) };
        if (match.Protocol is { Negated: false, Protocol.IsIcmp: true } && Chance(0.5))
        {
            bool v6 = match.Protocol.Protocol == IpProtocol.Icmpv6;
            match = match with { IcmpType = RangeMatch.Exactly(v6 ? Pick<uint>([128, 129, 1]) : Pick<uint>([8, 0, 3]), Chance(0.2)) };
        }
        if (Chance(0.1)) match = match with { Fragment = new FragmentMatch(Chance(0.5) ? FragmentKind.First : FragmentKind.NotFirst, Chance(0.3)) };
        if (Chance(0.1)) match = match with { Dscp = RangeMatch.Exactly((uint)Pick([0, 46, 10]), Chance(0.2)) };
        if (Chance(0.1)) match = match with { Length = new RangeMatch((uint)_random.Next(20, 100), (uint)_random.Next(100, 1500), Chance(0.2)) };
        if (_conntrack && Chance(0.15)) match = match with { CtState = new CtStateMatch((CtStates)_random.Next(1, 32), Chance(0.25)) };
        if (_conntrack && Chance(0.05)) match = match with { CtDirection = Chance(0.5) ? CtDirection.Original : CtDirection.Reply };
        if (Chance(0.05)) match = match with { Limit = new LimitMatch(1, RateUnit.Hour, (uint)_random.Next(1, 4)) };
        return match;
    }

    private Verdict Verdict(bool hooked, bool canReject, IReadOnlyList<string> targets)
    {
        int kind = _random.Next(100);
        if (kind < 35) return Rules.Verdict.Drop;
        if (kind < 65) return Rules.Verdict.Accept;
        if (kind < 72) return Rules.Verdict.Continue;
        if (kind < 76) return Rules.Verdict.Log(Chance(0.5) ? "GEN: " : null);
        if (kind < 82 && !hooked) return Rules.Verdict.Return;
        if (kind < 92 && targets.Count > 0) return Chance(0.7) ? Rules.Verdict.Jump(Pick(targets)) : Rules.Verdict.Goto(Pick(targets));
        if (kind < 96 && canReject) return Rules.Verdict.Reject();
        return Rules.Verdict.Drop;
    }

    private List<Rule> RuleList(int count, bool hooked, bool canReject, IReadOnlyList<string> targets, IReadOnlyList<NamedSet> sets)
    {
        var rules = new List<Rule>();
        for (int i = 0; i < count; i++)
        {
            var match = Match(sets);
            var verdict = Verdict(hooked, canReject, targets);
            if (verdict.Kind == VerdictKind.Reject && match.Protocol is { Negated: false } && !match.Protocol.Protocol.HasPorts && !match.Protocol.Protocol.IsIcmp)
                verdict = Rules.Verdict.Drop;
            rules.Add(new Rule(Chance(0.8) ? $"r{i + 1}" : null, match, verdict));
        }
        return rules;
    }

    /// <summary>A ruleset with one chain at <paramref name="hook"/>, up to three user chains (each may jump only to later ones, so no loops) and a few sets.</summary>
    public Ruleset Ruleset(Hook hook, int maxRules = 10)
    {
        _conntrack = hook is not (Hook.CgroupIngress or Hook.CgroupEgress); // the cgroup hooks know no connection state
        var sets = new List<NamedSet>();
        if (Chance(0.5)) sets.Add(new NamedSet("v4", SetType.Ipv4Network, Enumerable.Range(0, 3).Select(_ => new SetElement(Prefix(IpFamily.Ipv4)))));
        if (Chance(0.3)) sets.Add(new NamedSet("v6", SetType.Ipv6Address, Enumerable.Range(0, 2).Select(_ => new SetElement(IpPrefix.Parse(Pick(V6))))));
        if (Chance(0.4)) sets.Add(new NamedSet("ports", SetType.Port, Enumerable.Range(0, 3).Select(_ =>
        {
            ushort a = Pick(Ports), b = Pick(Ports);
            return new SetElement(new PortRange(Math.Min(a, b), Math.Max(a, b)));
        })));
        bool canReject = hook == Hook.Xdp;
        int userCount = _random.Next(0, 4);
        var names = Enumerable.Range(1, userCount).Select(i => $"U{i}").ToList();
        var users = new List<UserChain>();
        for (int i = 0; i < userCount; i++)
            users.Add(new UserChain(names[i], RuleList(_random.Next(0, 5), hooked: false, canReject, names.Skip(i + 1).ToList(), sets)));
        var rules = RuleList(_random.Next(0, maxRules + 1), hooked: true, canReject, names, sets);
        var policy = Chance(0.5) ? Rules.Verdict.Drop : Rules.Verdict.Accept;
        var chain = hook switch
        {
            Hook.Xdp or Hook.TcIngress or Hook.TcEgress => new Chain("GEN", hook, "lo", policy, rules),
            Hook.CgroupIngress or Hook.CgroupEgress => new Chain("GEN", hook, null, policy, rules, cgroup: "bpft"),
            _ => new Chain("GEN", hook, null, policy, rules),
        };
        return new Ruleset("gen", [chain], userChains: users, sets: sets);
    }

    /// <summary>A well-formed packet of either family, often one the pools' rules meet.</summary>
    public PacketFields Packet()
    {
        bool v6 = Chance(0.4);
        var protocol = Pick(Protocols);
        if (protocol == IpProtocol.Icmpv6) protocol = IpProtocol.Icmp; // the builder makes ICMPv6 of ICMP over IPv6
        bool later = Chance(0.08);
        return new PacketFields
        {
            Source = Pick(v6 ? V6 : V4),
            Destination = Pick(v6 ? V6 : V4),
            Protocol = protocol,
            SourcePort = protocol.HasPorts && !later ? Pick(Ports) : null,
            DestinationPort = protocol.HasPorts && !later ? Pick(Ports) : null,
            TcpFlags = Pick([TcpFlags.Syn, TcpFlags.Ack, TcpFlags.Syn | TcpFlags.Ack, TcpFlags.Rst, TcpFlags.Fin | TcpFlags.Ack]),
            IcmpType = protocol == IpProtocol.Icmp ? (byte)(v6 ? Pick([128, 129, 1]) : Pick([8, 0, 3])) : null,
            FragmentOffset = later ? (ushort)_random.Next(1, 100) : (ushort)0,
            MoreFragments = !later && Chance(0.05),
            Dscp = (byte)Pick([0, 0, 46, 10]),
            Ttl = (byte)Pick([64, 1, 2, 128]),
            ExtensionHeaders = v6 && Chance(0.2) ? Enumerable.Range(0, _random.Next(1, 4)).Select(_ => Pick<byte>([0, 43, 60])).ToList() : [],
            Length = Chance(0.2) ? _random.Next(120, 400) : null,
        };
    }
}
