using System.Buffers.Binary;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// Seeded generators of chains and packets for the property and corpus tests. Addresses and ports come from small
/// pools (so that rules match often, edges included: x.x.x.200 has bit 31 set in a little-endian load) with a share of
/// random ones; packets include every way the parser can refuse one.
/// </summary>
public sealed class SimulationGenerators(int seed)
{
    private readonly Random _random = new(seed);

    private static readonly string[] AddressPool =
    [
        "10.0.0.1", "10.0.0.200", "10.1.2.3", "10.77.0.200", "192.168.1.1", "192.168.255.254", "172.16.0.5",
        "255.255.255.255", "0.0.0.0", "127.0.0.1", "10.200.0.66",
    ];

    private static readonly ushort[] PortPool = [0, 1, 22, 23, 53, 80, 443, 8080, 9999, 32768, 65535];

    public Random Random => _random;

    private T Pick<T>(IReadOnlyList<T> items) => items[_random.Next(items.Count)];

    private bool Chance(double p) => _random.NextDouble() < p;

    public uint Address() => Chance(0.85)
        ? (uint)IpPrefix.Parse(Pick(AddressPool)).Address
        : (uint)_random.NextInt64(0, 1L << 32);

    public ushort Port() => Chance(0.85) ? Pick(PortPool) : (ushort)_random.Next(65536);

    public byte Protocol() => _random.Next(10) switch
    {
        < 4 => 6,
        < 7 => 17,
        < 9 => 1,
        _ => (byte)_random.Next(256),
    };

    public IpPrefix Prefix()
    {
        int length = _random.Next(6) switch { 0 => 0, 1 => 8, 2 => 16, 3 => 24, 4 => 32, _ => _random.Next(33) };
        uint mask = length == 0 ? 0 : uint.MaxValue << (32 - length);
        return new IpPrefix(IpFamily.Ipv4, Address() & mask, length);
    }

    /// <summary>A match of addresses, protocol and ports; with <paramref name="conntrack"/>, sometimes a ct-state or ct-direction too.</summary>
    public Match Match(bool conntrack = false)
    {
        IpProtocol? protocol = Chance(0.6) ? new IpProtocol(Protocol()) : null;
        bool ports = protocol is { HasPorts: true };
        var match = Matches.Simple(
            source: Chance(0.35) ? Prefix() : null,
            destination: Chance(0.35) ? Prefix() : null,
            protocol: protocol,
            sourcePort: ports && Chance(0.3) ? Port() : null,
            destinationPort: ports && Chance(0.5) ? Port() : null);
        if (conntrack && Chance(0.25)) match = match with { CtState = new CtStateMatch((CtStates)_random.Next(1, 32), negated: Chance(0.3)) };
        if (conntrack && Chance(0.1)) match = match with { CtDirection = Chance(0.5) ? CtDirection.Original : CtDirection.Reply };
        return match;
    }

    /// <summary>What connection tracking might show a run: no connection, any ctinfo on the skb, or a found connection.</summary>
    public Ebpf.Interpreter.ConntrackModel Conntrack() => new()
    {
        SkbNfct = _random.Next(4) switch
        {
            0 => 0,
            1 => 7,
            _ => Ebpf.Interpreter.ConntrackModel.ConnectionAddress | (uint)_random.Next(5),
        },
        Lookup = Chance(0.3) ? null : new Ebpf.Interpreter.ConntrackEntry((ulong)_random.Next(16), (byte)_random.Next(2)),
    };

    public Chain Chain(Hook hook, int maxRules = 8)
    {
        int count = _random.Next(maxRules + 1);
        var rules = new List<Rule>();
        for (int i = 0; i < count; i++)
        {
            // A rule that matches everything ends the program early; keep those rare so later rules get tested.
            var match = Match(conntrack: hook is not (Hook.CgroupIngress or Hook.CgroupEgress));
            if (match.IsAny && Chance(0.7)) match = Matches.Simple(protocol: new IpProtocol(Protocol()));
            rules.Add(new Rule(Chance(0.85) ? $"r{i + 1}" : null, match, Chance(0.5) ? Verdict.Drop : Verdict.Accept));
        }
        var policy = Chance(0.5) ? Verdict.Drop : Verdict.Accept;
        return hook switch
        {
            Hook.Xdp or Hook.TcIngress or Hook.TcEgress => new Chain("GEN", hook, "lo", policy, rules),
            Hook.CgroupIngress or Hook.CgroupEgress => new Chain("GEN", hook, null, policy, rules, cgroup: "bpft"),
            _ => new Chain("GEN", hook, null, policy, rules),
        };
    }

    /// <summary>
    /// A packet as a hook at <paramref name="l2"/> (Ethernet) or not sees it, of at least <paramref name="minimum"/>
    /// bytes: mostly well-formed IPv4, then options, fragments, cut-short and broken headers, other EtherTypes and IPv6,
    /// and random bytes.
    /// </summary>
    public byte[] Packet(bool l2, int minimum = 0)
    {
        byte[] frame;
        int kind = _random.Next(100);
        if (kind < 55) frame = Ipv4();
        else if (kind < 65) frame = Truncate(Ipv4());
        else if (kind < 75) frame = BreakHeader(Ipv4());
        else if (kind < 85) frame = OtherEtherType();
        else if (kind < 92) frame = Ipv6();
        else frame = RandomBytes();
        if (!l2) frame = frame.Length > 14 ? frame[14..] : [];
        if (frame.Length < minimum)
        {
            var padded = new byte[minimum];
            frame.CopyTo(padded, 0);
            frame = padded;
        }
        return frame;
    }

    private byte[] Ipv4()
    {
        byte protocol = Protocol();
        int options = Chance(0.2) ? _random.Next(1, 11) : 0;
        ushort fragment = Chance(0.15) ? (ushort)(Chance(0.5) ? _random.Next(1, 0x2000) : 0x2000 | _random.Next(0, 0x2000)) : (ushort)0;
        var frame = Frames.Ipv4(Format(Address()), Format(Address()), protocol, Port(), Port(),
            optionWords: options, fragmentOffset: fragment, payload: _random.Next(0, 64));
        return frame;
    }

    private byte[] Truncate(byte[] frame) => frame[..Math.Max(14, _random.Next(14, frame.Length + 1))];

    private byte[] BreakHeader(byte[] frame)
    {
        switch (_random.Next(3))
        {
            case 0: frame[14] = (byte)((frame[14] & 0x0f) | (_random.Next(16) << 4)); break; // version
            case 1: frame[14] = (byte)((frame[14] & 0xf0) | _random.Next(16)); break;        // IHL
            default: frame[14] = (byte)_random.Next(256); break;
        }
        return Chance(0.3) ? Truncate(frame) : frame;
    }

    private byte[] OtherEtherType()
    {
        var frame = new byte[_random.Next(14, 80)];
        _random.NextBytes(frame.AsSpan(14));
        ushort etherType = _random.Next(4) switch { 0 => 0x0806, 1 => 0x86dd, 2 => 0x8100, _ => (ushort)_random.Next(65536) };
        if (etherType == 0x0800) etherType = 0x0801;
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), etherType);
        return frame;
    }

    private byte[] Ipv6()
    {
        var frame = new byte[14 + 40 + 8 + _random.Next(0, 32)];
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), 0x86dd);
        frame[14] = 0x60;
        frame[14 + 6] = 17;
        _random.NextBytes(frame.AsSpan(14 + 8, 32));
        return Chance(0.3) ? Truncate(frame) : frame;
    }

    private byte[] RandomBytes()
    {
        var frame = new byte[_random.Next(14, 100)];
        _random.NextBytes(frame);
        if (Chance(0.5)) BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), 0x0800);
        return frame;
    }

    public static string Format(uint a) => $"{a >> 24}.{(a >> 16) & 0xff}.{(a >> 8) & 0xff}.{a & 0xff}";
}
