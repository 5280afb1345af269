using System.Globalization;

namespace Bpfilter.Engine.Rules;

/// <summary>
/// An address condition: the packet's address is in one of <see cref="Prefixes"/> or in the named set
/// <see cref="Set"/> (exactly one of the two), or, when <see cref="Negated"/>, in none of them.
/// </summary>
public sealed record AddressMatch
{
    public AddressMatch(IEnumerable<IpPrefix> prefixes, bool negated = false)
    {
        Prefixes = new ValueList<IpPrefix>(prefixes);
        if (Prefixes.Count == 0) throw new RulesetValidationException("an address list needs at least one address");
        if (Prefixes.Select(p => p.Family).Distinct().Count() > 1)
            throw new RulesetValidationException("an address list mixes IPv4 and IPv6: write one rule for each family");
        Negated = negated;
    }

    private AddressMatch(string set, bool negated)
    {
        Names.CheckSetName(set);
        Prefixes = ValueList<IpPrefix>.Empty;
        Set = set;
        Negated = negated;
    }

    public static AddressMatch InSet(string set, bool negated = false) => new(set, negated);

    public ValueList<IpPrefix> Prefixes { get; }
    public string? Set { get; }
    public bool Negated { get; }

    /// <summary>The family the prefixes belong to; null for a set reference (the set's type says).</summary>
    public IpFamily? Family => Prefixes.Count > 0 ? Prefixes[0].Family : null;

    /// <summary>True when the condition holds for every packet of the family: an un-negated 0.0.0.0/0 or ::/0.</summary>
    public bool IsAnyAddress => !Negated && Set is null && Prefixes.Any(p => p.Length == 0);

    public override string ToString() => (Negated ? "!" : "") + (Set is not null ? "@" + Set : Prefixes.Count == 1 ? Prefixes[0].ToString() : $"[{Prefixes}]");
}

/// <summary>An inclusive range of 16-bit values, such as ports 1000-2000; a single port is a range of one.</summary>
public readonly record struct PortRange
{
    public PortRange(ushort first, ushort last)
    {
        if (last < first) throw new RulesetValidationException($"the range {first}-{last} ends before it starts");
        First = first;
        Last = last;
    }

    public ushort First { get; }
    public ushort Last { get; }
    public bool Contains(int port) => port >= First && port <= Last;

    /// <summary>Parses "80", "1000-2000" or iptables' "1000:2000".</summary>
    public static PortRange Parse(string text, string field)
    {
        var separator = text.IndexOfAny(['-', ':']);
        if (separator < 0) return new(ParsePort(text, text, field), ParsePort(text, text, field));
        return new(ParsePort(text[..separator], text, field), ParsePort(text[(separator + 1)..], text, field));
    }

    private static ushort ParsePort(string part, string text, string field) =>
        ushort.TryParse(part.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var port)
            ? port
            : throw new RulesetValidationException($"'{text}' is not a port or port range: use a number from 0 to 65535 or a range such as 1000-2000", field);

    public override string ToString() => First == Last ? First.ToString(CultureInfo.InvariantCulture) : $"{First}-{Last}";
}

/// <summary>A port condition: the port is in one of <see cref="Ranges"/> or in the named set <see cref="Set"/>, or, when <see cref="Negated"/>, in none.</summary>
public sealed record PortMatch
{
    public PortMatch(IEnumerable<PortRange> ranges, bool negated = false)
    {
        Ranges = new ValueList<PortRange>(ranges);
        if (Ranges.Count == 0) throw new RulesetValidationException("a port list needs at least one port");
        Negated = negated;
    }

    private PortMatch(string set, bool negated)
    {
        Names.CheckSetName(set);
        Ranges = ValueList<PortRange>.Empty;
        Set = set;
        Negated = negated;
    }

    public static PortMatch Single(ushort port) => new([new PortRange(port, port)]);
    public static PortMatch InSet(string set, bool negated = false) => new(set, negated);

    public ValueList<PortRange> Ranges { get; }
    public string? Set { get; }
    public bool Negated { get; }

    public override string ToString() => (Negated ? "!" : "") + (Set is not null ? "@" + Set : Ranges.Count == 1 ? Ranges[0].ToString() : $"[{Ranges}]");
}

/// <summary>The transport protocol is (or, negated, is not) <see cref="Protocol"/>.</summary>
public sealed record ProtocolMatch(IpProtocol Protocol, bool Negated = false)
{
    public override string ToString() => (Negated ? "!" : "") + Protocol;
}

/// <summary>The packet came in on (or goes out of) the named interface, or, negated, did not.</summary>
public sealed record InterfaceMatch
{
    public InterfaceMatch(string name, bool negated = false)
    {
        Names.CheckInterfaceName(name);
        Name = name;
        Negated = negated;
    }

    public string Name { get; }
    public bool Negated { get; }
    public override string ToString() => (Negated ? "!" : "") + Name;
}

/// <summary>An inclusive range of a numeric header field (length, TTL, DSCP, ICMP type or code), negatable.</summary>
public sealed record RangeMatch
{
    public RangeMatch(uint first, uint last, bool negated = false)
    {
        if (last < first) throw new RulesetValidationException($"the range {first}-{last} ends before it starts");
        First = first;
        Last = last;
        Negated = negated;
    }

    public static RangeMatch Exactly(uint value, bool negated = false) => new(value, value, negated);

    public uint First { get; }
    public uint Last { get; }
    public bool Negated { get; }
    public bool Contains(uint value) => (value >= First && value <= Last) != Negated;

    /// <summary>Parses "64", "100-1500" or iptables' "100:1500"; every value must be at most <paramref name="max"/>.</summary>
    public static RangeMatch Parse(string text, uint max, string field, bool negated = false)
    {
        var separator = text.IndexOfAny(['-', ':']);
        uint first = ParseValue(separator < 0 ? text : text[..separator], text, max, field);
        uint last = separator < 0 ? first : ParseValue(text[(separator + 1)..], text, max, field);
        if (last < first) throw new RulesetValidationException($"the range '{text}' ends before it starts", field);
        return new RangeMatch(first, last, negated);
    }

    private static uint ParseValue(string part, string text, uint max, string field) =>
        uint.TryParse(part.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value <= max
            ? value
            : throw new RulesetValidationException($"'{text}' is not a value or range from 0 to {max}", field);

    public override string ToString() => (Negated ? "!" : "") + (First == Last ? First.ToString(CultureInfo.InvariantCulture) : $"{First}-{Last}");
}

/// <summary>iptables' --tcp-flags: of the flags in <see cref="Mask"/>, exactly those in <see cref="Set"/> are set (or, negated, not so).</summary>
public sealed record TcpFlagsMatch
{
    public TcpFlagsMatch(TcpFlags mask, TcpFlags set, bool negated = false)
    {
        if ((set & ~mask) != 0)
            throw new RulesetValidationException($"tcp-flags: {TcpFlagNames.Format(set & ~mask)} must be set but is not in the mask {TcpFlagNames.Format(mask)}", "tcp-flags");
        Mask = mask;
        Set = set;
        Negated = negated;
    }

    /// <summary>iptables' --syn: SYN set, ACK, RST and FIN clear.</summary>
    public static TcpFlagsMatch Syn { get; } = new(TcpFlags.Syn | TcpFlags.Ack | TcpFlags.Rst | TcpFlags.Fin, TcpFlags.Syn);

    public TcpFlags Mask { get; }
    public TcpFlags Set { get; }
    public bool Negated { get; }

    public bool Holds(TcpFlags flags) => ((flags & Mask) == Set) != Negated;

    /// <summary>"syn" for the shorthand, else iptables' two lists: "SYN,ACK,FIN,RST SYN".</summary>
    public override string ToString() => (Negated ? "!" : "") + (Mask == Syn.Mask && Set == Syn.Set ? "syn" : $"{TcpFlagNames.Format(Mask)} {TcpFlagNames.Format(Set)}");
}

/// <summary>Which fragments a fragment condition picks.</summary>
public enum FragmentKind
{
    /// <summary>The first fragment of a fragmented packet: offset 0, more fragments to come.</summary>
    First,
    /// <summary>Every fragment after the first (offset not 0): they carry no transport header. iptables' -f.</summary>
    NotFirst,
}

/// <summary>The packet is (or, negated, is not) a fragment of the given kind.</summary>
public sealed record FragmentMatch(FragmentKind Kind, bool Negated = false)
{
    public override string ToString() => (Negated ? "!" : "") + (Kind == FragmentKind.First ? "first" : "not-first");
}

/// <summary>The packet's mark, under <see cref="Mask"/>, equals <see cref="Value"/> (or, negated, does not).</summary>
public sealed record MarkMatch(uint Value, uint Mask = uint.MaxValue, bool Negated = false)
{
    public override string ToString() => (Negated ? "!" : "") + (Mask == uint.MaxValue ? $"0x{Value:x}" : $"0x{Value:x}/0x{Mask:x}");
}

/// <summary>The unit of a limit's rate.</summary>
public enum RateUnit
{
    Second = 1,
    Minute = 60,
    Hour = 3600,
    Day = 86400,
}

/// <summary>
/// iptables' -m limit: true for the packet while the token bucket (refilled at <see cref="Count"/> per
/// <see cref="Unit"/>, holding at most <see cref="Burst"/>) has a token, false once it is empty.
/// </summary>
public sealed record LimitMatch
{
    public const uint DefaultBurst = 5;

    public LimitMatch(uint count, RateUnit unit, uint burst = DefaultBurst)
    {
        if (count is 0 or > 1_000_000) throw new RulesetValidationException("a limit's rate is 1 to 1000000 packets per unit", "limit");
        if (burst is 0 or > 1_000_000) throw new RulesetValidationException("a limit's burst is 1 to 1000000 packets", "burst");
        Count = count;
        Unit = unit;
        Burst = burst;
    }

    public uint Count { get; }
    public RateUnit Unit { get; }
    public uint Burst { get; }

    /// <summary>Nanoseconds between two tokens.</summary>
    public ulong NanosecondsPerToken => (ulong)Unit * 1_000_000_000UL / Count;

    /// <summary>Parses iptables' rate: "3/minute", "10/s", "5/hour", "1/day" (a bare number is per second).</summary>
    public static LimitMatch Parse(string rate, uint burst = DefaultBurst)
    {
        var slash = rate.IndexOf('/');
        var countText = slash < 0 ? rate : rate[..slash];
        var unitText = slash < 0 ? "second" : rate[(slash + 1)..].ToLowerInvariant();
        RateUnit? unit = unitText switch
        {
            "s" or "sec" or "second" => RateUnit.Second,
            "m" or "min" or "minute" => RateUnit.Minute,
            "h" or "hour" => RateUnit.Hour,
            "d" or "day" => RateUnit.Day,
            _ => null,
        };
        if (unit is null || !uint.TryParse(countText, NumberStyles.None, CultureInfo.InvariantCulture, out var count))
            throw new RulesetValidationException($"'{rate}' is not a rate: write such as 10/second, 3/minute, 5/hour or 1/day", "limit");
        return new LimitMatch(count, unit.Value, burst);
    }

    public override string ToString() => $"{Count}/{Unit.ToString().ToLowerInvariant()} burst {Burst}";
}
