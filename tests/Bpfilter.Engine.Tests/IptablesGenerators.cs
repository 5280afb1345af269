using System.Text;
using Bpfilter.Engine.Formats.Iptables;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// Random rulesets in the form an iptables-save dump reads into (built-in chains INPUT, FORWARD and OUTPUT at their
/// netfilter hooks, user chains, every rule limited to one family, every condition in the form the reader gives it),
/// so that writing one and reading it back must give the same ruleset.
/// </summary>
internal static class IptablesGenerators
{
    /// <summary>In iptables-save's order (by name, in byte order).</summary>
    private static readonly string[] UserChainNames = ["LOGDROP", "WEB-IN", "f2b-sshd"];

    /// <summary>Rates that iptables-save prints back in the same unit (it picks the unit itself from the stored period).</summary>
    private static readonly LimitMatch[] Rates =
    [
        new(1, RateUnit.Second), new(5, RateUnit.Second), new(100, RateUnit.Second), new(10, RateUnit.Minute),
        new(13, RateUnit.Minute), new(3, RateUnit.Hour), new(7, RateUnit.Hour), new(1, RateUnit.Day), new(100, RateUnit.Day),
    ];

    /// <param name="commaLists">Whether address conditions may be comma lists, which iptables itself splits into one rule per address.</param>
    public static Ruleset Ruleset(int seed, IpFamily family, bool commaLists, int maxRules = 12)
    {
        var random = new Random(seed);
        var chains = new List<Chain>();
        var hooks = new[] { Hook.NfInput, Hook.NfForward, Hook.NfOutput };
        for (int c = 0; c < 3; c++)
        {
            // iptables refuses -o in INPUT and -i in OUTPUT.
            var rules = ChainRules(random, family, UserChainNames, commaLists, maxRules)
                .Select(r => c == 0 ? new Rule(r.Name, r.Match with { OutInterface = null }, r.Verdict) : c == 2 ? new Rule(r.Name, r.Match with { InInterface = null }, r.Verdict) : r);
            chains.Add(new Chain(IptablesSaveOptions.BuiltInChains[c], hooks[c], null, random.Next(2) == 0 ? Verdict.Accept : Verdict.Drop, rules.ToList()));
        }
        // A user chain jumps only to the ones after it, so no jumps loop.
        var userChains = UserChainNames.Select((name, i) => new UserChain(name, ChainRules(random, family, UserChainNames[(i + 1)..], commaLists, maxRules))).ToList();
        return new Ruleset("generated", chains, null, userChains);
    }

    private static List<Rule> ChainRules(Random random, IpFamily family, string[] targets, bool commaLists, int maxRules)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        return Enumerable.Range(0, random.Next(maxRules + 1)).Select(_ => Rule(random, family, targets, commaLists, names)).ToList();
    }

    public static Rule Rule(Random random, IpFamily family, string[] targets, bool commaLists, HashSet<string> names)
    {
        bool v6 = family == IpFamily.Ipv6;
        bool Chance(int percent) => random.Next(100) < percent;
        var protocol = random.Next(10) switch
        {
            0 or 1 or 2 => IpProtocol.Tcp,
            3 or 4 => IpProtocol.Udp,
            5 => v6 ? IpProtocol.Icmpv6 : IpProtocol.Icmp,
            6 => new IpProtocol((byte)new[] { 47, 50, 132, 51 }[random.Next(4)]),
            _ => (IpProtocol?)null,
        };
        var match = new Match { Family = family };
        bool transport = false;
        if (protocol is { } p)
        {
            if (p.HasPorts)
            {
                if (Chance(50)) match = match with { SourcePort = Ports(random) };
                if (Chance(60)) match = match with { DestinationPort = Ports(random) };
                if (p == IpProtocol.Tcp && Chance(30))
                {
                    var mask = (TcpFlags)random.Next(1, 64);
                    match = match with { TcpFlags = Chance(30) ? TcpFlagsMatch.Syn : new TcpFlagsMatch(mask, mask & (TcpFlags)random.Next(64), Chance(30)) };
                }
                transport = match.NeedsTransport;
            }
            else if (p.IsIcmp && Chance(70))
            {
                var type = (uint)random.Next(v6 ? 256 : 255);
                bool negated = Chance(25);
                match = match with { IcmpType = RangeMatch.Exactly(type, negated), IcmpCode = !negated && Chance(40) ? RangeMatch.Exactly((uint)random.Next(256)) : null };
                transport = true;
            }
            match = match with { Protocol = new ProtocolMatch(p, !transport && Chance(20)) };
        }
        bool limited = Chance(15);
        var verdict = RandomVerdict(random, family, targets, match.Protocol);
        if (Chance(50)) match = match with { Source = Addresses(random, family, commaLists && !limited, 0) };
        if (Chance(40)) match = match with { Destination = Addresses(random, family, commaLists && !limited, 1) };
        if (Chance(25)) match = match with { InInterface = new InterfaceMatch(new[] { "eth0", "wan1", "veth-a", "lo" }[random.Next(4)], Chance(30)) };
        if (Chance(20)) match = match with { OutInterface = new InterfaceMatch(new[] { "eth1", "lan0", "br-x" }[random.Next(3)], Chance(30)) };
        if (!v6 && !transport && Chance(10)) match = match with { Fragment = new FragmentMatch(FragmentKind.NotFirst, Chance(50)) };
        if (Chance(15))
        {
            var first = (uint)random.Next(65536);
            match = match with { Length = Chance(30) ? RangeMatch.Exactly(first, Chance(30)) : new RangeMatch(first, (uint)random.Next((int)first, 65536), Chance(30)) };
        }
        if (Chance(15)) match = match with { Dscp = RangeMatch.Exactly((uint)random.Next(64), Chance(30)) };
        if (Chance(15))
        {
            var hops = random.Next(3) switch
            {
                0 => RangeMatch.Exactly((uint)random.Next(256), Chance(30)),
                1 => new RangeMatch(0, (uint)random.Next(255)),
                _ => new RangeMatch((uint)random.Next(1, 256), 255),
            };
            match = v6 ? match with { HopLimit = hops } : match with { Ttl = hops };
        }
        if (Chance(15))
        {
            var mask = Chance(50) ? uint.MaxValue : (uint)random.NextInt64(1L << 32);
            match = match with { Mark = new MarkMatch((uint)random.NextInt64(1L << 32) & mask, mask, Chance(30)) };
        }
        if (limited)
        {
            var rate = Rates[random.Next(Rates.Length)];
            match = match with { Limit = new LimitMatch(rate.Count, rate.Unit, Chance(50) ? LimitMatch.DefaultBurst : (uint)random.Next(1, 10_001)) };
        }
        string? name = null;
        if (Chance(60))
        {
            do name = Text(random, random.Next(1, 40)).Trim(' ');
            while (name.Length == 0 || !names.Add(name));
        }
        return new Rule(name, match, verdict);
    }

    private static Verdict RandomVerdict(Random random, IpFamily family, string[] targets, ProtocolMatch? protocol)
    {
        bool tcp = protocol is { Negated: false, Protocol.Number: 6 };
        switch (random.Next(targets.Length > 0 ? 9 : 7))
        {
            case 0: return Verdict.Accept;
            case 1: return Verdict.Drop;
            case 2: return Verdict.Return;
            case 3: return Verdict.Continue;
            case 4: return Verdict.Log(Text(random, random.Next(0, 10)));
            case 5 or 6:
                RejectWith[] replies = family == IpFamily.Ipv6
                    ? [RejectWith.NetUnreachable, RejectWith.AdministrativelyProhibited, RejectWith.HostUnreachable, RejectWith.PortUnreachable]
                    : [RejectWith.NetUnreachable, RejectWith.HostUnreachable, RejectWith.ProtocolUnreachable, RejectWith.PortUnreachable,
                        RejectWith.NetProhibited, RejectWith.HostProhibited, RejectWith.AdministrativelyProhibited];
                return tcp && random.Next(3) == 0 ? Verdict.Reject(RejectWith.TcpReset) : Verdict.Reject(replies[random.Next(replies.Length)]);
            case 7: return Verdict.Jump(targets[random.Next(targets.Length)]);
            default: return Verdict.Goto(targets[random.Next(targets.Length)]);
        }
    }

    private static PortMatch Ports(Random random)
    {
        PortRange One()
        {
            var first = (ushort)random.Next(65536);
            return random.Next(3) == 0 ? new PortRange(first, (ushort)random.Next(first, 65536)) : new PortRange(first, first);
        }
        var ranges = new List<PortRange> { One() };
        if (random.Next(3) == 0)
        {
            // A -m multiport list: at most 15 ports, a range counting two.
            int slots = ranges[0].First == ranges[0].Last ? 1 : 2;
            for (int i = random.Next(1, 8); i > 0; i--)
            {
                var next = One();
                slots += next.First == next.Last ? 1 : 2;
                if (slots > 15) break;
                ranges.Add(next);
            }
        }
        return new PortMatch(ranges, random.Next(4) == 0);
    }

    /// <summary>One prefix, a range's prefixes (iprange) or, if allowed, a comma list of disjoint prefixes.</summary>
    private static AddressMatch Addresses(Random random, IpFamily family, bool commaList, int side)
    {
        int bits = family == IpFamily.Ipv4 ? 32 : 128;
        UInt128 Base(int k) => family == IpFamily.Ipv4 ? (UInt128)(10u << 24 | (uint)side << 20 | (uint)k << 12) : (UInt128)0x20010db8u << 96 | (UInt128)side << 80 | (UInt128)(uint)k << 64;
        switch (random.Next(commaList ? 4 : 3))
        {
            case 0 or 1:
                var length = random.Next(1, bits + 1);
                var address = (family == IpFamily.Ipv4 ? (UInt128)(uint)random.NextInt64(1L << 32) : new UInt128((ulong)random.NextInt64(), (ulong)random.NextInt64()))
                    & ~AddressRanges.HostMask(bits, length) & (family == IpFamily.Ipv4 ? uint.MaxValue : UInt128.MaxValue);
                return new AddressMatch([new IpPrefix(family, address, length)], random.Next(3) == 0);
            case 2:
                var first = Base(random.Next(16)) + (UInt128)random.Next(4096);
                var prefixes = AddressRanges.ToPrefixes(family, first, first + (UInt128)random.Next(1, 100_000));
                return new AddressMatch(prefixes, random.Next(3) == 0);
            default:
                // Distinct blocks of 2^12 addresses, each holding one prefix: disjoint.
                var blocks = Enumerable.Range(0, 16).OrderBy(_ => random.Next()).Take(random.Next(2, 5));
                return new AddressMatch(blocks.Select(k => new IpPrefix(family, Base(k), bits - random.Next(0, 13))));
        }
    }

    private const string Characters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-.:/#!\"'\\$&*()[]{}=+,;<>?@^`|~é€";

    private static string Text(Random random, int length)
    {
        var text = new StringBuilder();
        for (int i = 0; i < length; i++) text.Append(Characters[random.Next(Characters.Length)]);
        return text.ToString();
    }
}
