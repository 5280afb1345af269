using System.Globalization;

namespace Bpfilter.Engine.Rules;

/// <summary>ICMP and ICMPv6 message types by the names iptables and ip6tables use, or by number.</summary>
public static class IcmpTypes
{
    private static readonly Dictionary<string, byte> V4 = new(StringComparer.OrdinalIgnoreCase)
    {
        ["echo-reply"] = 0, ["destination-unreachable"] = 3, ["source-quench"] = 4, ["redirect"] = 5, ["echo-request"] = 8,
        ["router-advertisement"] = 9, ["router-solicitation"] = 10, ["time-exceeded"] = 11, ["parameter-problem"] = 12,
        ["timestamp-request"] = 13, ["timestamp-reply"] = 14,
    };

    private static readonly Dictionary<string, byte> V6 = new(StringComparer.OrdinalIgnoreCase)
    {
        ["destination-unreachable"] = 1, ["packet-too-big"] = 2, ["time-exceeded"] = 3, ["parameter-problem"] = 4,
        ["echo-request"] = 128, ["echo-reply"] = 129, ["router-solicitation"] = 133, ["router-advertisement"] = 134,
        ["neighbour-solicitation"] = 135, ["neighbour-advertisement"] = 136, ["redirect"] = 137,
    };

    public static IReadOnlyCollection<string> Names => V4.Keys.Concat(V6.Keys).Distinct(StringComparer.OrdinalIgnoreCase).Order().ToList();

    /// <summary>The name of an ICMP (or, when <paramref name="v6"/>, ICMPv6) type number; null for a type without one.</summary>
    public static string? Name(byte type, bool v6) => (v6 ? V6 : V4).FirstOrDefault(n => n.Value == type).Key;

    /// <summary>The type number of <paramref name="text"/> for ICMP, or for ICMPv6 when <paramref name="v6"/>.</summary>
    public static byte Parse(string text, bool v6)
    {
        if (byte.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var number)) return number;
        if ((v6 ? V6 : V4).TryGetValue(text, out number)) return number;
        throw new RulesetValidationException(
            $"'{text}' is not an {(v6 ? "ICMPv6" : "ICMP")} type: use a number from 0 to 255 or one of {string.Join(", ", (v6 ? V6 : V4).Keys)}", "icmp-type");
    }
}
