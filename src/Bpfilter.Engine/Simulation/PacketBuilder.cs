using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Simulation;

/// <summary>Where the bytes a hook sees begin.</summary>
public enum PacketLayer
{
    /// <summary>At the Ethernet header: XDP and TC.</summary>
    Ethernet,
    /// <summary>At the IP header: netfilter and cgroup_skb.</summary>
    Network,
}

/// <summary>
/// The header fields of a test packet. Addresses decide the family: IPv4 addresses make an IPv4 packet, IPv6
/// addresses an IPv6 one. A port that is not given is 0; <see cref="Length"/> pads the packet with zeros.
/// </summary>
public sealed record PacketFields
{
    public const string DefaultSource = "192.0.2.1", DefaultDestination = "192.0.2.2";

    public string Source { get; init; } = DefaultSource;
    public string Destination { get; init; } = DefaultDestination;
    public IpProtocol Protocol { get; init; } = IpProtocol.Tcp;
    public ushort? SourcePort { get; init; }
    public ushort? DestinationPort { get; init; }

    /// <summary>The bytes the hook sees in all (the frame at Ethernet hooks, the IP packet at network hooks); null for just the headers.</summary>
    public int? Length { get; init; }

    public byte Ttl { get; init; } = 64;

    /// <summary>The TCP flags of a TCP packet (a SYN unless said otherwise).</summary>
    public TcpFlags TcpFlags { get; init; } = TcpFlags.Syn;

    /// <summary>The ICMP or ICMPv6 type and code of an ICMP packet (an echo request unless said otherwise).</summary>
    public byte? IcmpType { get; init; }
    public byte IcmpCode { get; init; }

    /// <summary>The fragment offset in 8-byte units; a non-first fragment carries no transport header. IPv6 carries it in a fragment header.</summary>
    public ushort FragmentOffset { get; init; }

    /// <summary>The "more fragments" flag (IPv4 header, or IPv6 fragment header).</summary>
    public bool MoreFragments { get; init; }

    /// <summary>The DSCP (0–63): the top six bits of IPv4's TOS or IPv6's traffic class.</summary>
    public byte Dscp { get; init; }

    /// <summary>IPv6 extension headers before the transport header, by number (0 hop-by-hop, 43 routing, 60 destination options, 51 authentication), each 8 bytes.</summary>
    public IReadOnlyList<byte> ExtensionHeaders { get; init; } = [];

    /// <summary>An EtherType other than IPv4's and IPv6's (ARP is 0x0806): the frame then holds no IP header at all.</summary>
    public ushort? EtherType { get; init; }
}

/// <summary>
/// Builds packets byte by byte from <see cref="PacketFields"/>: Ethernet (02:00:00:00:00:01 → 02:00:00:00:00:02),
/// IPv4 (with its checksum) or IPv6, and TCP (a SYN), UDP or an ICMP echo request, with valid checksums.
/// </summary>
public static class PacketBuilder
{
    public const int EthernetHeaderLength = 14;
    private const ushort EtherTypeIpv4 = 0x0800, EtherTypeIpv6 = 0x86dd;

    public static byte[] Build(PacketFields fields, PacketLayer layer)
    {
        ArgumentNullException.ThrowIfNull(fields);
        int l2 = layer == PacketLayer.Ethernet ? EthernetHeaderLength : 0;
        if (fields.EtherType is { } etherType && etherType is not (EtherTypeIpv4 or EtherTypeIpv6))
            return BuildOther(fields, layer, etherType);

        var source = Address(fields.Source, "source");
        var destination = Address(fields.Destination, "destination");
        if (source.AddressFamily != destination.AddressFamily)
            throw Invalid($"the source {fields.Source} and the destination {fields.Destination} are not of one address family");
        bool v6 = source.AddressFamily == AddressFamily.InterNetworkV6;
        if (fields.EtherType is { } given && given != (v6 ? EtherTypeIpv6 : EtherTypeIpv4))
            throw Invalid($"EtherType 0x{given:x4} does not match {(v6 ? "IPv6" : "IPv4")} addresses");
        if ((fields.SourcePort is not null || fields.DestinationPort is not null) && !fields.Protocol.HasPorts)
            throw Invalid($"ports need protocol tcp or udp, not {fields.Protocol}");
        bool fragment = fields.FragmentOffset != 0;
        if (fragment && (fields.SourcePort is not null || fields.DestinationPort is not null))
            throw Invalid("a fragment other than the first carries no transport header, so it has no ports");
        if (fields.FragmentOffset > 0x1fff) throw Invalid($"fragment offset {fields.FragmentOffset} is more than 8191 (units of 8 bytes)");
        if (fields.Dscp > 63) throw Invalid($"DSCP {fields.Dscp} is more than 63");
        if (!v6 && fields.ExtensionHeaders.Count > 0) throw Invalid("extension headers are for IPv6 packets");
        if (fields.ExtensionHeaders.Any(h => h is not (0 or 43 or 60 or 51)))
            throw Invalid("extension headers are 0 (hop-by-hop), 43 (routing), 60 (destination options) or 51 (authentication); fragments come from -FragmentOffset and -MoreFragments");
        // IPv6: the extension headers, then a fragment header when the packet is a fragment.
        var extensions = v6 && (fragment || fields.MoreFragments) ? fields.ExtensionHeaders.Append((byte)44).ToList() : fields.ExtensionHeaders.ToList();

        byte protocol = v6 && fields.Protocol.Number == 1 ? (byte)58 : fields.Protocol.Number; // ICMP over IPv6 is ICMPv6
        int l3Header = v6 ? 40 + 8 * extensions.Count : 20;
        int l4Header = fragment ? 0 : protocol switch { 6 => 20, 17 => 8, 1 or 58 => 8, _ => 0 };
        int headers = l2 + l3Header + l4Header;
        int length = fields.Length ?? headers;
        if (length < headers)
            throw Invalid($"a length of {length} bytes is shorter than the headers ({headers} bytes); to test a cut-short packet, give its bytes");
        if (length > 65535 + l2) throw Invalid($"a length of {length} bytes is more than an IP packet can hold");

        var packet = new byte[length];
        if (l2 > 0) Ethernet(packet, v6 ? EtherTypeIpv6 : EtherTypeIpv4);
        var ip = packet.AsSpan(l2);
        var transport = ip[l3Header..];
        if (v6)
        {
            ip[0] = (byte)(0x60 | fields.Dscp >> 2);
            ip[1] = (byte)(fields.Dscp << 6);
            BinaryPrimitives.WriteUInt16BigEndian(ip[4..], (ushort)(ip.Length - 40));
            ip[6] = extensions.Count > 0 ? extensions[0] : protocol;
            for (int i = 0; i < extensions.Count; i++)
            {
                var header = ip.Slice(40 + 8 * i, 8);
                header[0] = i + 1 < extensions.Count ? extensions[i + 1] : protocol;
                if (extensions[i] == 44)
                {
                    BinaryPrimitives.WriteUInt16BigEndian(header[2..], (ushort)(fields.FragmentOffset << 3 | (fields.MoreFragments ? 1 : 0)));
                    BinaryPrimitives.WriteUInt32BigEndian(header[4..], 1); // identification
                }
                // Others: length 0, that is 8 bytes (authentication counts in 4-byte units less 2: also 0), padding after.
            }
            ip[7] = fields.Ttl;
            source.GetAddressBytes().CopyTo(ip[8..]);
            destination.GetAddressBytes().CopyTo(ip[24..]);
        }
        else
        {
            ip[0] = 0x45;
            ip[1] = (byte)(fields.Dscp << 2);
            BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)ip.Length);
            BinaryPrimitives.WriteUInt16BigEndian(ip[4..], 1); // identification
            BinaryPrimitives.WriteUInt16BigEndian(ip[6..], (ushort)((fields.MoreFragments ? 0x2000 : 0) | fields.FragmentOffset));
            ip[8] = fields.Ttl;
            ip[9] = protocol;
            source.GetAddressBytes().CopyTo(ip[12..]);
            destination.GetAddressBytes().CopyTo(ip[16..]);
            BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum(ip[..20], 0));
        }
        if (l4Header == 0) return packet;

        int checksumAt;
        switch (protocol)
        {
            case 6:
                BinaryPrimitives.WriteUInt16BigEndian(transport, fields.SourcePort ?? 0);
                BinaryPrimitives.WriteUInt16BigEndian(transport[2..], fields.DestinationPort ?? 0);
                BinaryPrimitives.WriteUInt32BigEndian(transport[4..], 1); // sequence number
                transport[12] = 5 << 4;                                     // data offset: 20 bytes
                transport[13] = (byte)fields.TcpFlags;
                BinaryPrimitives.WriteUInt16BigEndian(transport[14..], 64240);
                checksumAt = 16;
                break;
            case 17:
                BinaryPrimitives.WriteUInt16BigEndian(transport, fields.SourcePort ?? 0);
                BinaryPrimitives.WriteUInt16BigEndian(transport[2..], fields.DestinationPort ?? 0);
                BinaryPrimitives.WriteUInt16BigEndian(transport[4..], (ushort)transport.Length);
                checksumAt = 6;
                break;
            default:
                transport[0] = fields.IcmpType ?? (protocol == 58 ? (byte)128 : (byte)8); // echo request unless a type is given
                transport[1] = fields.IcmpCode;
                BinaryPrimitives.WriteUInt16BigEndian(transport[4..], 1);  // identifier
                BinaryPrimitives.WriteUInt16BigEndian(transport[6..], 1);  // sequence
                checksumAt = 2;
                break;
        }
        uint pseudo = protocol == 1 ? 0 : PseudoHeaderSum(source, destination, protocol, transport.Length);
        ushort sum = Checksum(transport, pseudo);
        if (protocol == 17 && sum == 0) sum = 0xffff;
        BinaryPrimitives.WriteUInt16BigEndian(transport[checksumAt..], sum);
        return packet;
    }

    /// <summary>A one-line description of a packet's headers, for results: "tcp 192.0.2.1:40000 -> 192.0.2.2:23, 54 bytes".</summary>
    public static string Describe(ReadOnlySpan<byte> packet, PacketLayer layer)
    {
        string size = $"{packet.Length} byte{(packet.Length == 1 ? "" : "s")}";
        var ip = packet;
        if (layer == PacketLayer.Ethernet)
        {
            if (packet.Length < EthernetHeaderLength) return $"cut-short frame, {size}";
            ushort etherType = BinaryPrimitives.ReadUInt16BigEndian(packet[12..]);
            if (etherType == 0x0806) return $"arp, {size}";
            if (etherType is not (EtherTypeIpv4 or EtherTypeIpv6)) return $"ethertype 0x{etherType:x4}, {size}";
            ip = packet[EthernetHeaderLength..];
        }
        if (ip.Length < 1) return $"empty, {size}";
        int version = ip[0] >> 4;
        if (version == 6)
        {
            if (ip.Length < 40) return $"cut-short ipv6, {size}";
            var from6 = new IPAddress(ip.Slice(8, 16));
            var to6 = new IPAddress(ip.Slice(24, 16));
            return Transport(ip[6], from6.ToString(), to6.ToString(), ip[40..], bracket: true, size);
        }
        if (version != 4 || ip.Length < 20) return $"{(version == 4 ? "cut-short " : "not ")}ipv4, {size}";
        int ihl = (ip[0] & 0x0f) * 4;
        string from = new IPAddress(ip.Slice(12, 4)).ToString(), to = new IPAddress(ip.Slice(16, 4)).ToString();
        bool first = (BinaryPrimitives.ReadUInt16BigEndian(ip[6..]) & 0x1fff) == 0;
        if (ihl < 20 || ihl > ip.Length) return $"ipv4 with a bad header length, {from} -> {to}, {size}";
        return Transport(ip[9], from, to, first ? ip[ihl..] : ReadOnlySpan<byte>.Empty, bracket: false, size)
            + (first ? "" : " (fragment)");
    }

    private static string Transport(byte protocol, string from, string to, ReadOnlySpan<byte> l4, bool bracket, string size)
    {
        string name = new IpProtocol(protocol).ToString();
        if (protocol == 58) name = "icmpv6";
        if (protocol is 6 or 17 && l4.Length >= 4)
        {
            string Host(string a) => bracket ? $"[{a}]" : a;
            ushort sp = BinaryPrimitives.ReadUInt16BigEndian(l4), dp = BinaryPrimitives.ReadUInt16BigEndian(l4[2..]);
            return $"{name} {Host(from)}:{sp.ToString(CultureInfo.InvariantCulture)} -> {Host(to)}:{dp.ToString(CultureInfo.InvariantCulture)}, {size}";
        }
        return $"{name} {from} -> {to}, {size}";
    }

    private static byte[] BuildOther(PacketFields fields, PacketLayer layer, ushort etherType)
    {
        if (layer == PacketLayer.Network)
            throw Invalid($"EtherType 0x{etherType:x4}: this hook sees IP packets only, with no Ethernet header");
        if (fields.Source != PacketFields.DefaultSource || fields.Destination != PacketFields.DefaultDestination
            || fields.SourcePort is not null || fields.DestinationPort is not null || fields.FragmentOffset != 0)
            throw Invalid($"a frame of EtherType 0x{etherType:x4} has no IP header, so it takes no addresses, ports or fragment offset");
        int length = fields.Length ?? 60; // the shortest Ethernet frame, without its FCS
        if (length < EthernetHeaderLength) throw Invalid($"a length of {length} bytes is shorter than the Ethernet header ({EthernetHeaderLength} bytes)");
        var frame = new byte[length];
        Ethernet(frame, etherType);
        return frame;
    }

    private static void Ethernet(Span<byte> frame, ushort etherType)
    {
        frame[0] = 0x02; frame[5] = 0x02;  // destination 02:00:00:00:00:02
        frame[6] = 0x02; frame[11] = 0x01; // source 02:00:00:00:00:01
        BinaryPrimitives.WriteUInt16BigEndian(frame[12..], etherType);
    }

    private static IPAddress Address(string text, string which)
    {
        if (IPAddress.TryParse(text, out var address) && !text.Contains('/'))
        {
            if (address.AddressFamily == AddressFamily.InterNetwork)
            {
                try
                {
                    IpPrefix.Parse(text); // the rules' own strict dotted quad: no "10.1" shorthands
                }
                catch (RulesetValidationException)
                {
                    throw Invalid($"the {which} '{text}' is not an IPv4 address written as four numbers (such as 10.0.0.1)");
                }
            }
            return address;
        }
        throw Invalid($"the {which} '{text}' is not an IPv4 or IPv6 address (a packet has one address, not a network)");
    }

    private static uint PseudoHeaderSum(IPAddress source, IPAddress destination, byte protocol, int length)
    {
        var bytes = new List<byte>();
        bytes.AddRange(source.GetAddressBytes());
        bytes.AddRange(destination.GetAddressBytes());
        uint sum = Sum(bytes.ToArray());
        return sum + protocol + (uint)length;
    }

    private static uint Sum(ReadOnlySpan<byte> data)
    {
        uint sum = 0;
        for (int i = 0; i + 1 < data.Length; i += 2) sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
        if (data.Length % 2 == 1) sum += (uint)data[^1] << 8;
        return sum;
    }

    /// <summary>The Internet checksum (RFC 1071) of <paramref name="data"/>, starting from a partial sum.</summary>
    public static ushort Checksum(ReadOnlySpan<byte> data, uint partial)
    {
        ulong sum = partial + (ulong)Sum(data);
        while (sum >> 16 != 0) sum = (sum & 0xffff) + (sum >> 16);
        return (ushort)~sum;
    }

    private static BpfilterException Invalid(string message) => new("PacketInvalid", FailureCategory.InvalidArgument, message);
}
