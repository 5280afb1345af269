using Bpfilter.Engine.Ebpf;

namespace Bpfilter.Engine.Compiler;

/// <summary>
/// Reads a packet's headers into the <see cref="PacketRecord"/>, the same way at every hook (the flavour only says
/// how to reach the bytes): the family by EtherType (hooks that see L2) or by the version nibble (hooks that start at
/// IP); IPv4 with its options skipped, or IPv6 with its extension headers walked (hop-by-hop, routing, fragment,
/// destination options, authentication; at most <see cref="MaxExtensionHeaders"/>) to the transport header; then the
/// ports and flags of TCP, the ports of UDP, the type and code of ICMP and ICMPv6. Non-first fragments carry no
/// transport header. Anything that is not IP goes to <c>notIp</c>; an IP header or an extension header cut short, a
/// wrong version or IHL, or more than <see cref="MaxExtensionHeaders"/> extension headers go to <c>malformed</c>.
/// </summary>
internal static class HeaderParser
{
    public const int MaxExtensionHeaders = 16;

    /// <summary>Extension headers may not push the transport header beyond this offset (the verifier needs a bound).</summary>
    private const int MaxTransportOffset = 2048;

    private const Register Offset = Register.R9;   // where the next header starts
    private const Register Next = Register.R6;     // IPv6 next header, then the transport protocol

    public static void Emit(Assembler asm, HookFlavour hook, Label notIp, Label malformed)
    {
        int l3 = hook.NetworkOffset;
        var ipv4 = asm.NewLabel("ipv4");
        var ipv6 = asm.NewLabel("ipv6");
        var transport = asm.NewLabel("transport");
        var done = asm.NewLabel("parsed");

        if (l3 > 0)
        {
            hook.EmitHeader(asm, null, 0, 14, malformed);
            asm.Load(Size.Half, Register.R1, Register.R0, 12);
            asm.Jump(JumpOp.Jeq, Register.R1, 0x0008, ipv4); // htons(0x0800) read little-endian
            asm.Jump(JumpOp.Jeq, Register.R1, 0xdd86, ipv6); // htons(0x86dd)
            asm.Jump(notIp);
        }
        else
        {
            hook.EmitHeader(asm, null, 0, 1, malformed);
            asm.Load(Size.Byte, Register.R1, Register.R0, 0);
            asm.Alu64(AluOp.Rsh, Register.R1, 4);
            asm.Jump(JumpOp.Jeq, Register.R1, 4, ipv4);
            asm.Jump(JumpOp.Jeq, Register.R1, 6, ipv6);
            asm.Jump(notIp);
        }

        var later = asm.NewLabel("later_fragment");
        asm.Mark(ipv4);
        EmitIpv4(asm, hook, l3, transport, later, malformed);
        asm.Mark(ipv6);
        EmitIpv6(asm, hook, l3, transport, later, malformed);
        asm.Mark(transport);
        EmitTransport(asm, hook, done, malformed);
        asm.Mark(later);
        PacketRecord.Store(asm, PacketRecord.Fragment, PacketRecord.FragmentLater);
        asm.Mark(done);
    }

    private static void EmitIpv4(Assembler asm, HookFlavour hook, int l3, Label transport, Label later, Label malformed)
    {
        hook.EmitHeader(asm, null, l3, 20, malformed);
        // Version 4 and IHL 5..15: the header is 20 to 60 bytes, and its options must be there too.
        asm.Load(Size.Byte, Register.R1, Register.R0, 0);
        asm.Mov(Register.R2, Register.R1);
        asm.Alu64(AluOp.Rsh, Register.R2, 4);
        asm.Jump(JumpOp.Jne, Register.R2, 4, malformed);
        asm.Alu64(AluOp.And, Register.R1, 0x0f);
        asm.Alu64(AluOp.Lsh, Register.R1, 2);
        asm.Jump(JumpOp.Jlt, Register.R1, 20, malformed);
        asm.Mov(Offset, Register.R1);
        asm.Alu64(AluOp.Add, Offset, l3);

        StoreByte(asm, Register.R0, 8, PacketRecord.Ttl);
        asm.Load(Size.Byte, Register.R1, Register.R0, 1);
        asm.Alu64(AluOp.Rsh, Register.R1, 2);
        PacketRecord.Store(asm, PacketRecord.Dscp, Register.R1);
        StoreBigEndian16(asm, Register.R0, 2, PacketRecord.Length);
        asm.Load(Size.Byte, Next, Register.R0, 9);
        PacketRecord.Store(asm, PacketRecord.Protocol, Next);
        StoreBigEndian32(asm, Register.R0, 12, PacketRecord.SourceAddress(0));
        StoreBigEndian32(asm, Register.R0, 16, PacketRecord.DestinationAddress(0));
        PacketRecord.Store(asm, PacketRecord.Family, 4);

        // Fragments: offset (13 bits) not 0 is a later fragment, with no transport header; offset 0 with MF is the first.
        asm.Load(Size.Half, Register.R1, Register.R0, 6);
        asm.FromBigEndian(Register.R1, 16);
        asm.Jump(JumpOp.Jset, Register.R1, 0x1fff, later);
        var whole = asm.NewLabel("ipv4_options");
        var first = asm.NewLabel("ipv4_first_fragment");
        asm.Jump(JumpOp.Jset, Register.R1, 0x2000, first);
        asm.Jump(whole);
        asm.Mark(first);
        PacketRecord.Store(asm, PacketRecord.Fragment, PacketRecord.FragmentFirst);

        // The options, if any, must be present: read the last byte of the header.
        asm.Mark(whole);
        asm.Jump(JumpOp.Jle, Offset, l3 + 20, transport);
        asm.Mov(Register.R1, Offset);
        asm.Alu64(AluOp.Add, Register.R1, -1);
        hook.EmitHeader(asm, Register.R1, 0, 1, malformed);
        asm.Jump(transport);
    }

    private static void EmitIpv6(Assembler asm, HookFlavour hook, int l3, Label transport, Label later, Label malformed)
    {
        hook.EmitHeader(asm, null, l3, 40, malformed);
        asm.Load(Size.Byte, Register.R1, Register.R0, 0);
        asm.Mov(Register.R2, Register.R1);
        asm.Alu64(AluOp.Rsh, Register.R2, 4);
        asm.Jump(JumpOp.Jne, Register.R2, 6, malformed);
        // DSCP: the traffic class is the low nibble of byte 0 and the high nibble of byte 1; DSCP is its top 6 bits.
        asm.Alu64(AluOp.And, Register.R1, 0x0f);
        asm.Alu64(AluOp.Lsh, Register.R1, 2);
        asm.Load(Size.Byte, Register.R2, Register.R0, 1);
        asm.Alu64(AluOp.Rsh, Register.R2, 6);
        asm.Alu64(AluOp.Or, Register.R1, Register.R2);
        PacketRecord.Store(asm, PacketRecord.Dscp, Register.R1);
        asm.Load(Size.Half, Register.R1, Register.R0, 4);
        asm.FromBigEndian(Register.R1, 16);
        asm.Alu64(AluOp.Add, Register.R1, 40);
        PacketRecord.Store(asm, PacketRecord.Length, Register.R1);
        StoreByte(asm, Register.R0, 7, PacketRecord.Ttl);
        for (int i = 0; i < 4; i++)
        {
            StoreBigEndian32(asm, Register.R0, (short)(8 + 4 * i), PacketRecord.SourceAddress(i));
            StoreBigEndian32(asm, Register.R0, (short)(24 + 4 * i), PacketRecord.DestinationAddress(i));
        }
        PacketRecord.Store(asm, PacketRecord.Family, 6);
        asm.Load(Size.Byte, Next, Register.R0, 6);
        asm.Mov(Offset, l3 + 40);

        var reached = asm.NewLabel("ipv6_upper_layer");
        for (int i = 0; i < MaxExtensionHeaders; i++)
        {
            var fragment = asm.NewLabel($"ipv6_fragment_{i}");
            var authentication = asm.NewLabel($"ipv6_ah_{i}");
            var generic = asm.NewLabel($"ipv6_options_{i}");
            var next = asm.NewLabel($"ipv6_header_{i + 1}");
            asm.Jump(JumpOp.Jeq, Next, 0, generic);   // hop-by-hop options
            asm.Jump(JumpOp.Jeq, Next, 43, generic);  // routing
            asm.Jump(JumpOp.Jeq, Next, 60, generic);  // destination options
            asm.Jump(JumpOp.Jeq, Next, 44, fragment);
            asm.Jump(JumpOp.Jeq, Next, 51, authentication);
            asm.Jump(reached);

            // {u8 next; u8 length in 8-byte units, not counting the first 8; ...}
            asm.Mark(generic);
            EmitSkip(asm, hook, malformed, next, unitsUncounted: 1, unitShift: 3);

            // {u8 next; u8 length in 4-byte units, not counting the first 2; ...}
            asm.Mark(authentication);
            EmitSkip(asm, hook, malformed, next, unitsUncounted: 2, unitShift: 2);

            // {u8 next; u8 reserved; be16 offset (13 bits) << 3 | M; be32 id}
            asm.Mark(fragment);
            hook.EmitHeader(asm, Offset, 0, 8, malformed);
            asm.Load(Size.Byte, Next, Register.R0, 0);
            asm.Load(Size.Half, Register.R1, Register.R0, 2);
            asm.FromBigEndian(Register.R1, 16);
            asm.Alu64(AluOp.Add, Offset, 8);
            PacketRecord.Store(asm, PacketRecord.Protocol, Next);
            asm.Jump(JumpOp.Jset, Register.R1, 0xfff8, later);
            var notFirst = asm.NewLabel($"ipv6_whole_{i}");
            asm.Jump(JumpOp.Jset, Register.R1, 1, notFirst);
            asm.Jump(next);
            asm.Mark(notFirst);
            PacketRecord.Store(asm, PacketRecord.Fragment, PacketRecord.FragmentFirst);

            asm.Mark(next);
            asm.Jump(JumpOp.Jgt, Offset, MaxTransportOffset, malformed);
        }
        // Still an extension header after the most this parser walks: a packet that hides its transport header that
        // deep is malformed (iptables would walk on; a filter that stopped here could be bypassed by padding).
        foreach (var extension in new[] { 0, 43, 60, 44, 51 }) asm.Jump(JumpOp.Jeq, Next, extension, malformed);
        asm.Mark(reached);
        PacketRecord.Store(asm, PacketRecord.Protocol, Next);
        asm.Jump(transport);
    }

    /// <summary>
    /// Reads the ports and flags of TCP, the ports of UDP, the type and code of ICMP and ICMPv6, at Offset. A transport
    /// header cut short is marked so (HasTransport = <see cref="PacketRecord.TransportCutShort"/>): rules on the
    /// protocol alone still see the packet, as iptables' do, and rules that need the header do not match it.
    /// </summary>
    private static void EmitTransport(Assembler asm, HookFlavour hook, Label done, Label malformed)
    {
        var cutShort = asm.NewLabel("transport_cut_short");
        PacketRecord.Store(asm, PacketRecord.TransportOffset, Offset);
        var tcp = asm.NewLabel("tcp");
        var udp = asm.NewLabel("udp");
        var icmp = asm.NewLabel("icmp");
        var icmpv6 = asm.NewLabel("icmpv6");
        var read = asm.NewLabel("transport_read");
        asm.Jump(JumpOp.Jeq, Next, 6, tcp);
        asm.Jump(JumpOp.Jeq, Next, 17, udp);
        asm.Jump(JumpOp.Jeq, Next, 1, icmp);
        asm.Jump(JumpOp.Jeq, Next, 58, icmpv6);
        asm.Jump(done);

        asm.Mark(tcp);
        hook.EmitHeader(asm, Offset, 0, 20, cutShort);
        StorePorts(asm);
        StoreByte(asm, Register.R0, 13, PacketRecord.TcpFlags);
        asm.Jump(read);

        asm.Mark(udp);
        hook.EmitHeader(asm, Offset, 0, 8, cutShort);
        StorePorts(asm);
        asm.Jump(read);

        // ICMP only in IPv4 and ICMPv6 only in IPv6 are what their names say; either elsewhere is just a protocol number.
        asm.Mark(icmp);
        PacketRecord.Load(asm, PacketRecord.Family, Register.R1);
        asm.Jump(JumpOp.Jne, Register.R1, 4, done);
        var icmpRead = asm.NewLabel("icmp_read");
        asm.Jump(icmpRead);
        asm.Mark(icmpv6);
        PacketRecord.Load(asm, PacketRecord.Family, Register.R1);
        asm.Jump(JumpOp.Jne, Register.R1, 6, done);
        asm.Mark(icmpRead);
        hook.EmitHeader(asm, Offset, 0, 4, cutShort);
        StoreByte(asm, Register.R0, 0, PacketRecord.IcmpType);
        StoreByte(asm, Register.R0, 1, PacketRecord.IcmpCode);

        asm.Mark(read);
        PacketRecord.Store(asm, PacketRecord.HasTransport, PacketRecord.TransportRead);
        asm.Jump(done);
        asm.Mark(cutShort);
        PacketRecord.Store(asm, PacketRecord.HasTransport, PacketRecord.TransportCutShort);
        asm.Jump(done);
    }

    /// <summary>Reads an extension header's next header and length byte, and moves Offset past it.</summary>
    private static void EmitSkip(Assembler asm, HookFlavour hook, Label malformed, Label next, int unitsUncounted, int unitShift)
    {
        hook.EmitHeader(asm, Offset, 0, 8, malformed);
        asm.Load(Size.Byte, Next, Register.R0, 0);
        asm.Load(Size.Byte, Register.R1, Register.R0, 1);
        asm.Alu64(AluOp.Add, Register.R1, unitsUncounted);
        asm.Alu64(AluOp.Lsh, Register.R1, unitShift);
        asm.Alu64(AluOp.Add, Offset, Register.R1);
        asm.Jump(next);
    }

    private static void StorePorts(Assembler asm)
    {
        StoreBigEndian16(asm, Register.R0, 0, PacketRecord.SourcePort);
        StoreBigEndian16(asm, Register.R0, 2, PacketRecord.DestinationPort);
    }

    private static void StoreByte(Assembler asm, Register header, short offset, short field)
    {
        asm.Load(Size.Byte, Register.R1, header, offset);
        PacketRecord.Store(asm, field, Register.R1);
    }

    private static void StoreBigEndian16(Assembler asm, Register header, short offset, short field)
    {
        asm.Load(Size.Half, Register.R1, header, offset);
        asm.FromBigEndian(Register.R1, 16);
        PacketRecord.Store(asm, field, Register.R1);
    }

    private static void StoreBigEndian32(Assembler asm, Register header, short offset, short field)
    {
        asm.Load(Size.Word, Register.R1, header, offset);
        asm.FromBigEndian(Register.R1, 32);
        PacketRecord.Store(asm, field, Register.R1);
    }
}
