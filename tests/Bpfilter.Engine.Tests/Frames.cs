using System.Buffers.Binary;

namespace Bpfilter.Engine.Tests;

/// <summary>Builds Ethernet frames byte by byte, including broken ones, for BPF_PROG_TEST_RUN.</summary>
public static class Frames
{
    public static byte[] Ipv4(string source, string destination, byte protocol, ushort sourcePort = 0, ushort destinationPort = 0,
        int optionWords = 0, ushort fragmentOffset = 0, int payload = 8)
    {
        int ihl = 5 + optionWords;
        int l4 = protocol is 6 ? 20 : protocol is 17 ? 8 : 8;
        var frame = new byte[14 + ihl * 4 + l4 + payload];
        Ethernet(frame, 0x0800);
        var ip = frame.AsSpan(14);
        ip[0] = (byte)(0x40 | ihl);
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(frame.Length - 14));
        BinaryPrimitives.WriteUInt16BigEndian(ip[6..], fragmentOffset);
        ip[8] = 64;
        ip[9] = protocol;
        System.Net.IPAddress.Parse(source).GetAddressBytes().CopyTo(ip[12..]);
        System.Net.IPAddress.Parse(destination).GetAddressBytes().CopyTo(ip[16..]);
        var transport = ip[(ihl * 4)..];
        BinaryPrimitives.WriteUInt16BigEndian(transport, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(transport[2..], destinationPort);
        return frame;
    }

    public static byte[] Arp()
    {
        var frame = new byte[42];
        Ethernet(frame, 0x0806);
        return frame;
    }

    private static void Ethernet(byte[] frame, ushort etherType)
    {
        frame[0] = 0x02; frame[5] = 0x02;
        frame[6] = 0x02; frame[11] = 0x01;
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), etherType);
    }
}
