using System.Globalization;

namespace Bpfilter.Engine.Rules;

/// <summary>An IP protocol number (the IPv4 protocol field), with the names users type.</summary>
public readonly record struct IpProtocol(byte Number)
{
    public static readonly IpProtocol Icmp = new(1);
    public static readonly IpProtocol Tcp = new(6);
    public static readonly IpProtocol Udp = new(17);

    private static readonly Dictionary<string, byte> Names = new(StringComparer.OrdinalIgnoreCase)
    {
        ["icmp"] = 1, ["tcp"] = 6, ["udp"] = 17,
    };

    /// <summary>The names accepted by <see cref="Parse"/>, for messages and completion.</summary>
    public static IReadOnlyCollection<string> KnownNames => Names.Keys;

    /// <summary>True for protocols whose header starts with a 16-bit source and destination port.</summary>
    public bool HasPorts => Number is 6 or 17;

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
        return Names.FirstOrDefault(n => n.Value == number).Key ?? number.ToString(CultureInfo.InvariantCulture);
    }
}
