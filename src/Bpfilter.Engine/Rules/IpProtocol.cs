using System.Globalization;

namespace Bpfilter.Engine.Rules;

/// <summary>An IP protocol number (the IPv4 protocol field), with the names users type.</summary>
public readonly record struct IpProtocol(byte Number)
{
    public static readonly IpProtocol Icmp = new(1);
    public static readonly IpProtocol Tcp = new(6);
    public static readonly IpProtocol Udp = new(17);
    public static readonly IpProtocol Icmpv6 = new(58);

    private static readonly Dictionary<string, byte> Names = new(StringComparer.OrdinalIgnoreCase)
    {
        ["icmp"] = 1, ["tcp"] = 6, ["udp"] = 17, ["icmpv6"] = 58, ["ipv6-icmp"] = 58, ["sctp"] = 132, ["gre"] = 47, ["esp"] = 50, ["ah"] = 51,
    };

    /// <summary>The names accepted by <see cref="Parse"/>, for messages and completion.</summary>
    public static IReadOnlyCollection<string> KnownNames => Names.Keys;

    /// <summary>True for protocols whose header starts with a 16-bit source and destination port.</summary>
    public bool HasPorts => Number is 6 or 17;

    /// <summary>True for ICMP and ICMPv6, whose header starts with a type and a code.</summary>
    public bool IsIcmp => Number is 1 or 58;

    public static IpProtocol Parse(string text)
    {
        if (Names.TryGetValue(text, out var number)) return new IpProtocol(number);
        if (byte.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out number)) return new IpProtocol(number);
        throw new RulesetValidationException(
            $"'{text}' is not a protocol: use {string.Join(", ", Names.Keys)} or a number from 0 to 255", "protocol");
    }

    public override string ToString()
    {
        var number = Number;
        return number == 58 ? "icmpv6" : Names.FirstOrDefault(n => n.Value == number).Key ?? number.ToString(CultureInfo.InvariantCulture);
    }
}
