using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// Seeded generator of random valid rulesets over the whole rules model: hooked chains at every hook with every chain
/// option, user chains reached by jumps and gotos (without loops), sets of every type, every match key with its
/// negation, lists and set references, every verdict, and names, prefixes and paths full of characters that YAML
/// must quote or escape. For the YAML round-trip and schema tests.
/// </summary>
internal sealed class RulesetGenerator(int seed)
{
    private readonly Random _random = new(seed);

    private T Pick<T>(IReadOnlyList<T> items) => items[_random.Next(items.Count)];

    private bool Chance(double p) => _random.NextDouble() < p;

    private static readonly string[] NameWords =
    [
        "web", "ssh", "true", "null", "no", "~", "123", "0x10", "1.5", "-dash", "a: b", "a #b", "{x}", "[y]", "!bang", "@at",
        "&anchor", "*alias", "%pct", "`tick", "|pipe", ">fold", "'single'", "\"double\"", "back\\slash", "caf\u00e9",
        "\U0001F525fire", "nel\u0085here", "line\u2028sep", "bom\uFEFF", "c1\u009Bx", "a  b", "?q", "x,y", "- item", ".inf",
    ];

    /// <summary>A word with the index after it, or (for the first) the word alone, so that words YAML reads as typed stand alone too.</summary>
    private string Unique(IReadOnlyList<string> words, int index) => index == 0 && Chance(0.3) ? Pick(words) : $"{Pick(words)}{index}";

    private string RuleName(int index) => Chance(0.2) ? $"r{index}" : Unique(NameWords, index);

    private string ChainName(string[] words, int index) => Chance(0.2) ? $"{index}{words[0]}" : Unique(words, index);

    private string LogPrefix() => string.Concat(Enumerable.Range(0, 1 + _random.Next(3))
        .Select(_ => Pick(["IN: ", "drop ", "\"q\" ", "a\u2028b", "#", "caf\u00e9", "\U0001F525", "x\\y", "{ }", "!", "@"])));

    private IpPrefix Prefix(IpFamily family)
    {
        int bits = family == IpFamily.Ipv4 ? 32 : 128;
        int length = _random.Next(4) switch { 0 => bits, 1 => 0, _ => _random.Next(bits + 1) };
        UInt128 address = family == IpFamily.Ipv4 ? (uint)_random.NextInt64(0, 1L << 32)
            : new UInt128((ulong)_random.NextInt64(), (ulong)_random.NextInt64());
        if (family == IpFamily.Ipv6 && Chance(0.3)) address = _random.Next(3) == 0 ? 1 : (UInt128)0x20010db8 << 96 | (uint)_random.Next(256);
        UInt128 mask = length == 0 ? 0 : (UInt128.MaxValue << (bits - length)) & (bits == 32 ? uint.MaxValue : UInt128.MaxValue);
        return new IpPrefix(family, address & mask, length);
    }

    private PortRange Ports()
    {
        var first = (ushort)(_random.Next(3) == 0 ? _random.Next(65536) : Pick<int>([0, 22, 53, 80, 443, 8000, 65535]));
        return Chance(0.3) ? new PortRange(first, (ushort)Math.Min(65535, first + _random.Next(2000))) : new PortRange(first, first);
    }

    private RangeMatch Range(uint max) =>
        Chance(0.6) ? RangeMatch.Exactly((uint)_random.NextInt64(0, max + 1), Chance(0.2))
            : new RangeMatch((uint)_random.NextInt64(0, max / 2 + 1), (uint)_random.NextInt64(max / 2 + 1, max + 1), Chance(0.2));

    private NamedSet Set(int index)
    {
        var type = Pick(Enum.GetValues<SetType>());
        var name = Unique(["block", "allow", "y", "on", "null", "n.a-b_c"], index);
        var elements = new List<SetElement>();
        for (int i = _random.Next(_random.Next(6) == 0 ? 40 : 6); i > 0; i--)
        {
            elements.Add(type switch
            {
                SetType.Port => new SetElement(Ports()),
                SetType.Ipv4Address => new SetElement(new IpPrefix(IpFamily.Ipv4, (uint)_random.NextInt64(0, 1L << 32), 32)),
                SetType.Ipv6Address => new SetElement(new IpPrefix(IpFamily.Ipv6, new UInt128((ulong)_random.NextInt64(), (ulong)_random.NextInt64()), 128)),
                SetType.Ipv4Network => new SetElement(Prefix(IpFamily.Ipv4)),
                _ => new SetElement(Prefix(IpFamily.Ipv6)),
            });
        }
        return new NamedSet(name, type, elements);
    }

    private AddressMatch Addresses(IpFamily? family, IReadOnlyList<NamedSet> sets)
    {
        var fitting = sets.Where(s => SetTypeNames.IsAddress(s.Type) && (family is null || s.Family == family)).ToList();
        if (family is null || fitting.Count > 0 && Chance(0.3)) return AddressMatch.InSet(Pick(fitting).Name, Chance(0.3));
        return new AddressMatch(Enumerable.Range(0, Chance(0.7) ? 1 : 2 + _random.Next(4)).Select(_ => Prefix(family.Value)), Chance(0.3));
    }

    private PortMatch PortCondition(IReadOnlyList<NamedSet> sets)
    {
        var portSets = sets.Where(s => s.Type == SetType.Port).ToList();
        if (portSets.Count > 0 && Chance(0.25)) return PortMatch.InSet(Pick(portSets).Name, Chance(0.3));
        return new PortMatch(Enumerable.Range(0, Chance(0.6) ? 1 : 2 + _random.Next(4)).Select(_ => Ports()), Chance(0.25));
    }

    private Match MakeMatch(IReadOnlyList<NamedSet> sets)
    {
        if (Chance(0.1)) return Match.Any;
        // The family first: addresses, ttl, hop-limit and ICMP types must agree with it.
        IpFamily? family = _random.Next(3) switch { 0 => null, 1 => IpFamily.Ipv4, _ => IpFamily.Ipv6 };
        bool hasAddressSets = sets.Any(s => SetTypeNames.IsAddress(s.Type));
        IpProtocol? protocol = Chance(0.7)
            ? Pick<IpProtocol>([IpProtocol.Tcp, IpProtocol.Tcp, IpProtocol.Udp, family == IpFamily.Ipv6 ? IpProtocol.Icmpv6 : IpProtocol.Icmp,
                new IpProtocol(132), new IpProtocol(47), new IpProtocol((byte)_random.Next(256))])
            : null;
        bool protocolNegated = protocol is not null && Chance(0.15);
        bool ports = protocol is { HasPorts: true } && !protocolNegated;
        bool icmp = protocol is { IsIcmp: true } && !protocolNegated && family is not null
            && (protocol == IpProtocol.Icmp) == (family == IpFamily.Ipv4);
        var v6 = family == IpFamily.Ipv6;
        return new Match
        {
            Family = family is not null && Chance(0.3) ? family : null,
            InInterface = Chance(0.2) ? new InterfaceMatch(Pick(["eth0", "veth-a", "lo", "br.100", "wg+", "a#b", "x\"y", "@if", "123", "on"]), Chance(0.3)) : null,
            OutInterface = Chance(0.15) ? new InterfaceMatch(Pick(["eth1", "bond0", "{x}", "tun,1"]), Chance(0.3)) : null,
            Source = (family is not null || hasAddressSets) && Chance(0.4) ? Addresses(family, sets) : null,
            Destination = (family is not null || hasAddressSets) && Chance(0.3) ? Addresses(family, sets) : null,
            Protocol = protocol is { } p ? new ProtocolMatch(p, protocolNegated) : null,
            SourcePort = ports && Chance(0.3) ? PortCondition(sets) : null,
            DestinationPort = ports && Chance(0.6) ? PortCondition(sets) : null,
            TcpFlags = ports && protocol == IpProtocol.Tcp && Chance(0.4) ? TcpFlagsCondition() : null,
            IcmpType = icmp && Chance(0.7)
                ? Chance(0.6) ? RangeMatch.Exactly(Pick<uint>(v6 ? [128, 129, 135, 1, 2, 200] : [0, 3, 8, 11, 13, 100]), Chance(0.2)) : Range(255)
                : null,
            IcmpCode = icmp && Chance(0.3) ? Range(255) : null,
            Length = Chance(0.15) ? Range(65535 + 40) : null,
            Fragment = Chance(0.1) ? new FragmentMatch(Pick(Enum.GetValues<FragmentKind>()), Chance(0.3)) : null,
            Dscp = Chance(0.1) ? Range(63) : null,
            Ttl = family == IpFamily.Ipv4 && Chance(0.15) ? Range(255) : null,
            HopLimit = family == IpFamily.Ipv6 && Chance(0.15) ? Range(255) : null,
            Mark = Chance(0.15) ? Mark() : null,
            CtState = Chance(0.15) ? new CtStateMatch((CtStates)_random.Next(1, 32), Chance(0.25)) : null,
            CtDirection = Chance(0.1) ? Pick(Enum.GetValues<CtDirection>()) : null,
            Limit = Chance(0.1) ? new LimitMatch((uint)_random.Next(1, 1_000_001), Pick(Enum.GetValues<RateUnit>()), Chance(0.5) ? LimitMatch.DefaultBurst : (uint)_random.Next(1, 1_000_001)) : null,
        };
    }

    /// <summary>A mark whose value lies inside its mask: the reader refuses one that no packet could match.</summary>
    private MarkMatch Mark()
    {
        var mask = Chance(0.5) ? uint.MaxValue : (uint)_random.NextInt64(0, 1L << 32);
        return new MarkMatch((uint)_random.NextInt64(0, 1L << 32) & mask, mask, Chance(0.2));
    }

        private TcpFlagsMatch TcpFlagsCondition()
    {
        if (Chance(0.3)) return Chance(0.7) ? TcpFlagsMatch.Syn : new TcpFlagsMatch(TcpFlagsMatch.Syn.Mask, TcpFlagsMatch.Syn.Set, true);
        var mask = (TcpFlags)_random.Next(256);
        return new TcpFlagsMatch(mask, mask & (TcpFlags)_random.Next(256), Chance(0.2));
    }

    private Verdict MakeVerdict(IReadOnlyList<string> targets) => _random.Next(10) switch
    {
        0 => Verdict.Accept,
        1 => Verdict.Drop,
        2 => Verdict.Reject(Pick(Enum.GetValues<RejectWith>())),
        3 => Verdict.Continue,
        4 => Verdict.Return,
        5 => Verdict.Log(Chance(0.3) ? null : LogPrefix()),
        6 or 7 when targets.Count > 0 => Verdict.Jump(Pick(targets)),
        8 when targets.Count > 0 => Verdict.Goto(Pick(targets)),
        _ => Chance(0.5) ? Verdict.Accept : Verdict.Drop,
    };

    private List<Rule> MakeRules(int count, IReadOnlyList<string> targets, IReadOnlyList<NamedSet> sets) =>
        Enumerable.Range(0, count).Select(i => new Rule(Chance(0.6) ? RuleName(i) : null, MakeMatch(sets), MakeVerdict(targets))).ToList();

    private static readonly string[] Paths =
        ["/sys/fs/cgroup/web", "svc/app", "/sys/fs/cgroup/a b/#c", "sl\u00e4ce/\"q\"", "/x/y:z", "n\\a"];

    public Ruleset Ruleset(int maxRules = 6)
    {
        var sets = Enumerable.Range(0, _random.Next(3) == 0 ? 0 : _random.Next(4)).Select(Set).ToList();
        // User chain i may go only to user chains after it, so the jumps never loop.
        var userNames = Enumerable.Range(0, _random.Next(4)).Select(i => ChainName(["USER", "y", "true", "Off"], i)).ToList();
        var userChains = userNames.Select((name, i) => new UserChain(name, MakeRules(_random.Next(maxRules + 1), userNames.Skip(i + 1).ToList(), sets))).ToList();
        var chains = new List<Chain>();
        var hooks = Enum.GetValues<Hook>();
        for (int c = 1 + _random.Next(3); c > 0; c--)
        {
            var hook = Pick(hooks);
            var index = chains.Count;
            chains.Add(new Chain(
                ChainName(["IN", "on", "null", "No"], index), hook,
                hook.Target() == HookTarget.Interface ? Unique(["eth", "veth1.", "x#y", "on", "a\"b", "{c}"], index) : null,
                Chance(0.5) ? Verdict.Accept : Verdict.Drop,
                MakeRules(_random.Next(maxRules + 1), userNames, sets),
                hook == Hook.Xdp ? Pick(Enum.GetValues<XdpMode>()) : XdpMode.Native,
                // A priority of its own for each netfilter chain, so that no two attach at one point.
                hook.IsNetfilter() && Chance(0.7) ? index * 10 - 10 : null,
                hook is Hook.TcIngress or Hook.TcEgress ? Pick(Enum.GetValues<TcxOrder>()) : TcxOrder.Last,
                hook.Target() == HookTarget.Cgroup ? Pick(Paths) + index : null,
                Chance(0.2) ? Pick(["ns1", "/run/netns/ns 2", "/proc/1/ns/net"]) : null));
        }
        // The netfilter chains without a priority all sit at 0: keep one of them.
        var kept = chains.Where((chain, i) => !chain.Hook.IsNetfilter() || chain.Priority != 0
            || chains.FindIndex(other => other.Hook == chain.Hook && other.Priority == 0 && other.NetworkNamespace == chain.NetworkNamespace) == i).ToList();
        return new Ruleset(Pick(["web", "fw-1", "0", "on", "a_b"]), kept, null, userChains, sets);
    }
}
