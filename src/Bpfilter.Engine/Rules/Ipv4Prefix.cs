using System.Globalization;

namespace Bpfilter.Engine.Rules;

/// <summary>An IPv4 network: an address in host byte order and a prefix length 0–32. A plain address is a /32.</summary>
public readonly record struct Ipv4Prefix
{
    public Ipv4Prefix(uint address, int length)
    {
        if (length is < 0 or > 32) throw new RulesetValidationException($"prefix length {length} is not between 0 and 32");
        if ((address & ~MaskOf(length)) != 0)
            throw new RulesetValidationException(
                $"{Format(address)}/{length} has host bits set; the network is {Format(address & MaskOf(length))}/{length}");
        Address = address;
        Length = length;
    }

    public uint Address { get; }
    public int Length { get; }
    public uint Mask => MaskOf(Length);

    public bool Contains(uint address) => (address & Mask) == Address;

    /// <summary>Parses "10.0.0.1" or "10.0.0.0/8". Only dotted quads of four decimal numbers 0–255 are accepted.</summary>
    public static Ipv4Prefix Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var slash = text.IndexOf('/');
        var addressText = slash < 0 ? text : text[..slash];
        int length = 32;
        if (slash >= 0 && !(int.TryParse(text[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out length) && length <= 32))
            throw new RulesetValidationException($"'{text}' is not an IPv4 address or network: the prefix length must be 0 to 32");
        var parts = addressText.Split('.');
        uint address = 0;
        if (parts.Length != 4) throw NotAnAddress(text);
        foreach (var part in parts)
        {
            if (part.Length is 0 or > 3 || !byte.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var octet))
                throw NotAnAddress(text);
            address = (address << 8) | octet;
        }
        return new Ipv4Prefix(address, length);
    }

    public override string ToString() => Length == 32 ? Format(Address) : $"{Format(Address)}/{Length}";

    private static uint MaskOf(int length) => length == 0 ? 0 : uint.MaxValue << (32 - length);

    private static string Format(uint a) => $"{a >> 24}.{(a >> 16) & 0xff}.{(a >> 8) & 0xff}.{a & 0xff}";

    private static RulesetValidationException NotAnAddress(string text) =>
        new($"'{text}' is not an IPv4 address or network (expected a dotted quad such as 10.0.0.1 or 10.0.0.0/8)");
}
