using System.Globalization;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Editing;

/// <summary>
/// Reads the conditions of a rule from text as a person types them (the New-BpfRule parameters): one spelling
/// for every condition. A leading '!' negates the condition, as in iptables; in a list it goes once, before the
/// first value, and negates the whole list. '@name' refers to a named set and stands alone. Ranges are
/// "first-last" (or iptables' "first:last"). The values themselves are read by the model's own parsers.
/// </summary>
public static class MatchText
{
    /// <summary>Splits off a leading '!': ("!10.0.0.0/8") is (true, "10.0.0.0/8").</summary>
    public static (bool Negated, string Text) Negation(string text)
    {
        var trimmed = text.Trim();
        return trimmed.StartsWith('!') ? (true, trimmed[1..].TrimStart()) : (false, trimmed);
    }

    /// <summary>Addresses and networks of one family, or one "@set"; "!" in front of the first negates them all.</summary>
    public static AddressMatch Addresses(IReadOnlyList<string> values, string field)
    {
        var (negated, items) = NegatedList(values, field);
        if (SetReference(items, field) is { } set) return AddressMatch.InSet(set, negated);
        return WithField(field, () => new AddressMatch(items.Select(IpPrefix.Parse), negated));
    }

    /// <summary>Ports and port ranges ("80", "1000-2000"), or one "@set"; "!" in front of the first negates them all.</summary>
    public static PortMatch Ports(IReadOnlyList<string> values, string field)
    {
        var (negated, items) = NegatedList(values, field);
        if (SetReference(items, field) is { } set) return PortMatch.InSet(set, negated);
        return WithField(field, () => new PortMatch(items.Select(i => PortRange.Parse(i, field)), negated));
    }

    public static InterfaceMatch Interface(string text)
    {
        var (negated, name) = Negation(text);
        return new InterfaceMatch(name, negated);
    }

    public static ProtocolMatch Protocol(string text)
    {
        var (negated, name) = Negation(text);
        return new ProtocolMatch(IpProtocol.Parse(name), negated);
    }

    /// <summary>"syn" (iptables' --syn), or iptables' two lists, the flags to look at and those of them that must be set: "SYN,ACK,FIN,RST SYN".</summary>
    public static TcpFlagsMatch TcpFlags(string text)
    {
        var (negated, flags) = Negation(text);
        if (flags.Equals("syn", StringComparison.OrdinalIgnoreCase))
            return new TcpFlagsMatch(TcpFlagsMatch.Syn.Mask, TcpFlagsMatch.Syn.Set, negated);
        var lists = flags.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (lists.Length != 2)
            throw new RulesetValidationException(
                $"'{text}' is not a tcp-flags condition: write the flags to look at and those of them that must be set, such as 'SYN,ACK,FIN,RST SYN', or syn", "tcp-flags");
        return new TcpFlagsMatch(TcpFlagNames.Parse(lists[0]), TcpFlagNames.Parse(lists[1]), negated);
    }

    /// <summary>A numeric field: "64", "100-1500", "!0"; every value at most <paramref name="max"/>.</summary>
    public static RangeMatch Range(string text, uint max, string field)
    {
        var (negated, range) = Negation(text);
        return RangeMatch.Parse(range, max, field, negated);
    }

    /// <summary>An ICMP type by name ("echo-request", for ICMPv6 when <paramref name="v6"/>) or by number or range of numbers.</summary>
    public static RangeMatch IcmpType(string text, bool v6)
    {
        var (negated, type) = Negation(text);
        return type.Length > 0 && char.IsAsciiDigit(type[0])
            ? RangeMatch.Parse(type, 255, "icmp-type", negated)
            : RangeMatch.Exactly(IcmpTypes.Parse(type, v6), negated);
    }

    /// <summary>"first" or "not-first" (iptables' -f), "!" in front to negate.</summary>
    public static FragmentMatch Fragment(string text)
    {
        var (negated, kind) = Negation(text);
        return kind.ToLowerInvariant() switch
        {
            "first" => new FragmentMatch(FragmentKind.First, negated),
            "not-first" => new FragmentMatch(FragmentKind.NotFirst, negated),
            _ => throw new RulesetValidationException($"'{text}' is not a fragment condition: use first or not-first", "fragment"),
        };
    }

    /// <summary>iptables' --mark value[/mask]: numbers in decimal or 0x hexadecimal, "!" in front to negate.</summary>
    public static MarkMatch Mark(string text)
    {
        var (negated, mark) = Negation(text);
        var slash = mark.IndexOf('/');
        uint value = MarkNumber(slash < 0 ? mark : mark[..slash], text);
        uint mask = slash < 0 ? uint.MaxValue : MarkNumber(mark[(slash + 1)..], text);
        if ((value & ~mask) != 0)
            throw new RulesetValidationException($"mark '{text}': the value has bits outside the mask, so no packet could match", "mark");
        return new MarkMatch(value, mask, negated);
    }

    /// <summary>Connection states ("established", "related", or "established,related"); "!" in front of the first negates them all.</summary>
    public static CtStateMatch CtState(IReadOnlyList<string> values) => CtStateMatch.Parse(values);

    /// <summary>"original" or "reply".</summary>
    public static CtDirection CtDirection(string text) => CtDirectionNames.Parse(text);

    /// <summary>iptables' -m limit: a rate such as "10/second" and the burst (5 when not given).</summary>
    public static LimitMatch Limit(string rate, uint? burst) => LimitMatch.Parse(rate.Trim(), burst ?? LimitMatch.DefaultBurst);

    private static uint MarkNumber(string part, string text)
    {
        part = part.Trim();
        bool hex = part.StartsWith("0x", StringComparison.OrdinalIgnoreCase);
        return uint.TryParse(hex ? part[2..] : part, hex ? NumberStyles.AllowHexSpecifier : NumberStyles.None, CultureInfo.InvariantCulture, out var number)
            ? number
            : throw new RulesetValidationException($"'{text}' is not a mark: write a number (decimal or 0x hexadecimal) from 0 to 0xffffffff, and optionally /mask", "mark");
    }

    private static (bool Negated, IReadOnlyList<string> Items) NegatedList(IReadOnlyList<string> values, string field)
    {
        if (values.Count == 0) throw new RulesetValidationException("give at least one value", field);
        var (negated, first) = Negation(values[0]);
        var items = new List<string> { first };
        foreach (var value in values.Skip(1))
        {
            if (Negation(value).Negated)
                throw new RulesetValidationException($"'{value}': a '!' negates the whole list, so it goes once, before the first value", field);
            items.Add(Negation(value).Text);
        }
        return (negated, items);
    }

    private static string? SetReference(IReadOnlyList<string> items, string field)
    {
        if (!items.Any(i => i.StartsWith('@'))) return null;
        if (items.Count > 1)
            throw new RulesetValidationException("a set reference stands alone; put the other values in the set", field);
        return items[0][1..];
    }

    // The model's address and list errors name no field; the caller learns which condition they are about.
    private static T WithField<T>(string field, Func<T> build)
    {
        try
        {
            return build();
        }
        catch (RulesetValidationException e) when (e.Field is null)
        {
            throw new RulesetValidationException(e.Message, field);
        }
    }
}
