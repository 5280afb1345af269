using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Bpfilter.Engine.Rules;

/// <summary>
/// An IPv4 or IPv6 network: an address as a host-order integer (IPv4 in the low 32 bits) and a prefix length. A plain
/// address is a /32 or a /128.
/// </summary>
public readonly record struct IpPrefix
{
    public IpPrefix(IpFamily family, UInt128 address, int length)
    {
        int bits = BitsOf(family);
        if (length < 0 || length > bits) throw new RulesetValidationException($"prefix length {length} is not between 0 and {bits}");
        if (bits == 32 && address > uint.MaxValue) throw new ArgumentOutOfRangeException(nameof(address));
        Family = family;
        Address = address;
        Length = length;
        if ((address & ~Mask) != 0)
            throw new RulesetValidationException(
                $"{FormatAddress(address)}/{length} has host bits set; the network is {FormatAddress(address & Mask)}/{length}");
    }

    public IpFamily Family { get; }
    public UInt128 Address { get; }
    public int Length { get; }
    public int Bits => BitsOf(Family);
    public UInt128 Mask => Length == 0 ? 0 : (UInt128.MaxValue << (Bits - Length)) & AllOnes;
    private UInt128 AllOnes => Bits == 32 ? uint.MaxValue : UInt128.MaxValue;
    public bool IsHost => Length == Bits;

    public bool Contains(IpFamily family, UInt128 address) => family == Family && (address & Mask) == Address;

    /// <summary>The address in network byte order: 4 or 16 bytes.</summary>
    public byte[] AddressBytes()
    {
        var bytes = new byte[Bits / 8];
        var value = Address;
        for (int i = bytes.Length - 1; i >= 0; i--, value >>= 8) bytes[i] = (byte)value;
        return bytes;
    }

    public static UInt128 ToInteger(ReadOnlySpan<byte> networkOrder)
    {
        UInt128 value = 0;
        foreach (var b in networkOrder) value = value << 8 | b;
        return value;
    }

    /// <summary>Parses "10.0.0.1", "10.0.0.0/8", "2001:db8::1" or "2001:db8::/32". IPv4 must be a dotted quad of four decimal numbers.</summary>
    public static IpPrefix Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var slash = text.IndexOf('/');
        var addressText = slash < 0 ? text : text[..slash];
        bool v6 = addressText.Contains(':');
        var family = v6 ? IpFamily.Ipv6 : IpFamily.Ipv4;
        int bits = BitsOf(family);
        int length = bits;
        if (slash >= 0 && !(int.TryParse(text[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out length) && length <= bits))
            throw new RulesetValidationException($"'{text}' is not an {(v6 ? "IPv6" : "IPv4")} address or network: the prefix length must be 0 to {bits}");
        UInt128 address;
        if (v6)
        {
            if (!IPAddress.TryParse(addressText, out var ip) || ip.AddressFamily != AddressFamily.InterNetworkV6 || ip.ScopeId != 0 || addressText.Contains('%'))
                throw new RulesetValidationException($"'{text}' is not an IPv6 address or network (expected such as 2001:db8::1 or 2001:db8::/32)");
            address = ToInteger(ip.GetAddressBytes());
        }
        else
        {
            var parts = addressText.Split('.');
            uint v4 = 0;
            if (parts.Length != 4) throw NotAnAddress(text);
            foreach (var part in parts)
            {
                if (part.Length is 0 or > 3 || !byte.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var octet))
                    throw NotAnAddress(text);
                v4 = (v4 << 8) | octet;
            }
            address = v4;
        }
        return new IpPrefix(family, address, length);
    }

    public override string ToString() => IsHost ? FormatAddress(Address) : $"{FormatAddress(Address)}/{Length}";

    private string FormatAddress(UInt128 address)
    {
        if (Family == IpFamily.Ipv4)
        {
            var a = (uint)address;
            return $"{a >> 24}.{(a >> 16) & 0xff}.{(a >> 8) & 0xff}.{a & 0xff}";
        }
        var bytes = new byte[16];
        for (int i = 15; i >= 0; i--, address >>= 8) bytes[i] = (byte)address;
        return new IPAddress(bytes).ToString();
    }

    private static int BitsOf(IpFamily family) => family == IpFamily.Ipv4 ? 32 : 128;

    private static RulesetValidationException NotAnAddress(string text) =>
        new($"'{text}' is not an IPv4 address or network (expected a dotted quad such as 10.0.0.1 or 10.0.0.0/8)");
}
