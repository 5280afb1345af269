using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Compiler;

/// <summary>
/// A reject at XDP: the packet is rewritten in place into the answer and sent back with XDP_TX. TCP gets a reset
/// (RFC 9293: the sequence number of the segment's ACK, or an ACK of everything it carried); anything else an ICMP
/// or ICMPv6 destination unreachable that quotes the first 28 (IPv4) or 48 (IPv6) bytes of the packet. As iptables'
/// REJECT, it answers no later fragment, no reset, no ICMP error and no multicast or broadcast destination: those are
/// dropped without an answer. Checksums are summed in registers from the record (no helper); the packet is resized
/// with bpf_xdp_adjust_head and bpf_xdp_adjust_tail.
/// </summary>
internal static class RejectWriter
{
    private const int Ethernet = 14;
    private const Register Ctx = Register.R6, Data = Register.R7, End = Register.R8;
    private const short Seq = PacketRecord.Buffer, Ack = PacketRecord.Buffer + 4, Flags = PacketRecord.Buffer + 8;

    /// <summary>ICMP codes (type 3) and ICMPv6 codes (type 1) of each kind; null where ICMPv6 has none.</summary>
    public static (int V4, int? V6) Codes(RejectWith with) => with switch
    {
        RejectWith.NetUnreachable => (0, 0),
        RejectWith.HostUnreachable => (1, 3),
        RejectWith.ProtocolUnreachable => (2, null),
        RejectWith.NetProhibited => (9, 1),
        RejectWith.HostProhibited => (10, 1),
        RejectWith.AdministrativelyProhibited => (13, 1),
        _ => (3, 4),
    };

    /// <summary>Emits the answer; the packet was counted. Ends in exit (XDP_TX, or XDP_DROP where it must not answer).</summary>
    public static void Emit(Assembler asm, RejectWith with)
    {
        var drop = asm.NewLabel("reject_silently");
        var reset = asm.NewLabel("reject_tcp_reset");
        var icmp = asm.NewLabel("reject_icmp");
        asm.Load(Size.DoubleWord, Ctx, Register.R10, PacketRecord.Context);
        PacketRecord.Load(asm, PacketRecord.Fragment);
        asm.Jump(JumpOp.Jeq, Register.R0, PacketRecord.FragmentLater, drop);
        if (with == RejectWith.TcpReset) asm.Jump(reset);
        else if (with == RejectWith.Default)
        {
            PacketRecord.Load(asm, PacketRecord.Protocol);
            asm.Jump(JumpOp.Jeq, Register.R0, 6, reset);
            asm.Jump(icmp);
        }
        else asm.Jump(icmp);

        asm.Mark(reset);
        PacketRecord.Load(asm, PacketRecord.Protocol);
        asm.Jump(JumpOp.Jne, Register.R0, 6, drop);
        PacketRecord.Load(asm, PacketRecord.TcpFlags);
        asm.Jump(JumpOp.Jset, Register.R0, (int)TcpFlags.Rst, drop);
        var reset6 = asm.NewLabel("reject_tcp_reset_ipv6");
        PacketRecord.Load(asm, PacketRecord.Family);
        asm.Jump(JumpOp.Jeq, Register.R0, 6, reset6);
        EmitReset(asm, 20, drop);
        asm.Mark(reset6);
        EmitReset(asm, 40, drop);

        asm.Mark(icmp);
        var icmp6 = asm.NewLabel("reject_icmpv6");
        PacketRecord.Load(asm, PacketRecord.Family);
        asm.Jump(JumpOp.Jeq, Register.R0, 6, icmp6);
        EmitUnreachable4(asm, Codes(with).V4, drop);
        asm.Mark(icmp6);
        if (Codes(with).V6 is { } code6) EmitUnreachable6(asm, code6, drop);
        else asm.Jump(drop);

        asm.Mark(drop);
        asm.Mov(Register.R0, 1); // XDP_DROP
        asm.Exit();
    }

    private static void EmitReset(Assembler asm, int ipLength, Label drop)
    {
        int tcp = Ethernet + ipLength, total = tcp + 20;
        // The segment's sequence, acknowledgement and length, before anything is rewritten.
        LoadPointers(asm);
        PacketRecord.Load(asm, PacketRecord.TransportOffset, Register.R1);
        asm.Jump(JumpOp.Jgt, Register.R1, 2048, drop);
        asm.Mov(Register.R2, Data);
        asm.Alu64(AluOp.Add, Register.R2, Register.R1);
        asm.Mov(Register.R3, Register.R2);
        asm.Alu64(AluOp.Add, Register.R3, 20);
        asm.Jump(JumpOp.Jgt, Register.R3, End, drop);
        asm.Load(Size.Word, Register.R3, Register.R2, 4);
        asm.FromBigEndian(Register.R3, 32);                 // seq
        asm.Load(Size.Word, Register.R4, Register.R2, 8);
        asm.FromBigEndian(Register.R4, 32);                 // ack
        asm.Load(Size.Byte, Register.R5, Register.R2, 12);
        asm.Alu64(AluOp.Rsh, Register.R5, 4);
        asm.Alu64(AluOp.Lsh, Register.R5, 2);               // header length
        // payload = IP length − (transport offset − Ethernet) − TCP header length; SYN and FIN count one each.
        PacketRecord.Load(asm, PacketRecord.Length, Register.R0);
        asm.Alu64(AluOp.Sub, Register.R0, Register.R1);
        asm.Alu64(AluOp.Add, Register.R0, Ethernet);
        asm.Alu64(AluOp.Sub, Register.R0, Register.R5);
        PacketRecord.Load(asm, PacketRecord.TcpFlags, Register.R5);
        foreach (var flag in new[] { TcpFlags.Syn, TcpFlags.Fin })
        {
            var without = asm.NewLabel($"reset_without_{flag}");
            asm.Mov(Register.R1, Register.R5);
            asm.Alu64(AluOp.And, Register.R1, (int)flag);
            asm.Jump(JumpOp.Jeq, Register.R1, 0, without);
            asm.Alu64(AluOp.Add, Register.R0, 1);
            asm.Mark(without);
        }
        var acked = asm.NewLabel("reset_to_ack");
        var stored = asm.NewLabel("reset_numbers");
        asm.Jump(JumpOp.Jset, Register.R5, (int)TcpFlags.Ack, acked);
        // No ACK: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
        asm.Alu32(AluOp.Add, Register.R0, Register.R3);
        asm.Store(Size.Word, Register.R10, Seq, 0);
        asm.Store(Size.Word, Register.R10, Ack, Register.R0);
        asm.Store(Size.Word, Register.R10, Flags, (int)(TcpFlags.Rst | TcpFlags.Ack));
        asm.Jump(stored);
        // ACK: <SEQ=SEG.ACK><CTL=RST>
        asm.Mark(acked);
        asm.Store(Size.Word, Register.R10, Seq, Register.R4);
        asm.Store(Size.Word, Register.R10, Ack, 0);
        asm.Store(Size.Word, Register.R10, Flags, (int)TcpFlags.Rst);
        asm.Mark(stored);

        Resize(asm, head: 0, total, drop);
        SwapEthernet(asm, from: 0);
        WriteIpHeader(asm, ipLength, payload: 20, protocol: 6);
        // TCP: the ports swapped, the numbers above, data offset 5, window 0, checksum over the pseudo header.
        PacketRecord.Load(asm, PacketRecord.DestinationPort, Register.R1);
        asm.FromBigEndian(Register.R1, 16);
        asm.Store(Size.Half, Data, (short)tcp, Register.R1);
        PacketRecord.Load(asm, PacketRecord.SourcePort, Register.R1);
        asm.FromBigEndian(Register.R1, 16);
        asm.Store(Size.Half, Data, (short)(tcp + 2), Register.R1);
        asm.Load(Size.Word, Register.R1, Register.R10, Seq);
        asm.FromBigEndian(Register.R1, 32);
        asm.Store(Size.Word, Data, (short)(tcp + 4), Register.R1);
        asm.Load(Size.Word, Register.R1, Register.R10, Ack);
        asm.FromBigEndian(Register.R1, 32);
        asm.Store(Size.Word, Data, (short)(tcp + 8), Register.R1);
        asm.Store(Size.Byte, Data, (short)(tcp + 12), 0x50);
        asm.Load(Size.Word, Register.R1, Register.R10, Flags);
        asm.Store(Size.Byte, Data, (short)(tcp + 13), Register.R1);
        asm.Store(Size.Half, Data, (short)(tcp + 14), 0);
        asm.Store(Size.Half, Data, (short)(tcp + 18), 0);

        SumAddresses(asm, ipLength == 40 ? 4 : 1);          // r2 = the pseudo header's addresses
        asm.Alu64(AluOp.Add, Register.R2, 6 + 20);          // protocol and TCP length
        PacketRecord.Load(asm, PacketRecord.DestinationPort, Register.R1);
        asm.Alu64(AluOp.Lsh, Register.R1, 16);
        asm.Alu64(AluOp.Add, Register.R2, Register.R1);
        PacketRecord.Load(asm, PacketRecord.SourcePort, Register.R1);
        asm.Alu64(AluOp.Add, Register.R2, Register.R1);
        asm.Load(Size.Word, Register.R1, Register.R10, Seq);
        asm.Alu64(AluOp.Add, Register.R2, Register.R1);
        asm.Load(Size.Word, Register.R1, Register.R10, Ack);
        asm.Alu64(AluOp.Add, Register.R2, Register.R1);
        asm.Load(Size.Word, Register.R1, Register.R10, Flags);
        asm.Alu64(AluOp.Add, Register.R2, Register.R1);
        asm.Alu64(AluOp.Add, Register.R2, 0x5000);
        StoreChecksum(asm, (short)(tcp + 16));
        Transmit(asm);
    }

    private static void EmitUnreachable4(Assembler asm, int code, Label drop)
    {
        // Never about an ICMP error, nor to a multicast or broadcast address (224.0.0.0 and above).
        var notIcmp = asm.NewLabel("unreachable_not_icmp");
        PacketRecord.Load(asm, PacketRecord.Protocol);
        asm.Jump(JumpOp.Jne, Register.R0, 1, notIcmp);
        PacketRecord.Load(asm, PacketRecord.IcmpType);
        foreach (var error in new[] { 3, 4, 5, 11, 12 }) asm.Jump(JumpOp.Jeq, Register.R0, error, drop);
        asm.Mark(notIcmp);
        PacketRecord.Load(asm, PacketRecord.DestinationAddress(0));
        asm.Jump32(JumpOp.Jge, Register.R0, 0xe0000000u, drop);

        const int ip = 20, header = 8, quoted = 28, grow = ip + header, total = Ethernet + ip + header + quoted;
        Resize(asm, head: grow, total, drop);
        SwapEthernet(asm, from: grow);
        asm.Store(Size.Half, Data, 12, 0x0008); // htons(ETH_P_IP)
        WriteIpHeader(asm, ip, payload: header + quoted, protocol: 1);
        EmitIcmpHeader(asm, Ethernet + ip, 3, code, quoted, extraSum: null);
        Transmit(asm);
    }

    private static void EmitUnreachable6(Assembler asm, int code, Label drop)
    {
        // Never about an ICMPv6 error (types below 128), nor to a multicast address (ff00::/8).
        var notIcmp = asm.NewLabel("unreachable6_not_icmpv6");
        PacketRecord.Load(asm, PacketRecord.Protocol);
        asm.Jump(JumpOp.Jne, Register.R0, 58, notIcmp);
        PacketRecord.Load(asm, PacketRecord.IcmpType);
        asm.Jump(JumpOp.Jlt, Register.R0, 128, drop);
        asm.Mark(notIcmp);
        PacketRecord.Load(asm, PacketRecord.DestinationAddress(0));
        asm.Alu32(AluOp.Rsh, Register.R0, 24);
        asm.Jump(JumpOp.Jeq, Register.R0, 0xff, drop);

        const int ip = 40, header = 8, quoted = 48, grow = ip + header, total = Ethernet + ip + header + quoted;
        Resize(asm, head: grow, total, drop);
        SwapEthernet(asm, from: grow);
        asm.Store(Size.Half, Data, 12, 0xdd86); // htons(ETH_P_IPV6)
        WriteIpHeader(asm, ip, payload: header + quoted, protocol: 58);
        SumAddresses(asm, 4);
        asm.Alu64(AluOp.Add, Register.R2, header + quoted + 58);
        asm.Mov(Register.R9, Register.R2);
        EmitIcmpHeader(asm, Ethernet + ip, 1, code, quoted, extraSum: Register.R9);
        Transmit(asm);
    }

    /// <summary>Type, code, checksum (over the header, the quoted bytes and <paramref name="extraSum"/>), 4 zero bytes.</summary>
    private static void EmitIcmpHeader(Assembler asm, int at, int type, int code, int quoted, Register? extraSum)
    {
        asm.Store(Size.Byte, Data, (short)at, type);
        asm.Store(Size.Byte, Data, (short)(at + 1), code);
        asm.Store(Size.Word, Data, (short)(at + 4), 0);
        if (extraSum is { } extra) asm.Mov(Register.R2, extra);
        else asm.Mov(Register.R2, 0L);
        asm.Alu64(AluOp.Add, Register.R2, type << 8 | code);
        for (int i = 0; i < quoted; i += 4)
        {
            asm.Load(Size.Word, Register.R1, Data, (short)(at + 8 + i));
            asm.FromBigEndian(Register.R1, 32);
            asm.Alu64(AluOp.Add, Register.R2, Register.R1);
        }
        StoreChecksum(asm, (short)(at + 2));
    }

    /// <summary>The IPv4 or IPv6 header of the answer: from the packet's destination to its source, TTL 64.</summary>
    private static void WriteIpHeader(Assembler asm, int ipLength, int payload, int protocol)
    {
        const short ip = Ethernet;
        int words = ipLength == 40 ? 4 : 1;
        if (ipLength == 20)
        {
            asm.Store(Size.Half, Data, ip, 0x0045);                                   // version 4, IHL 5, TOS 0
            asm.Store(Size.Half, Data, ip + 2, Swap16(20 + payload));
            asm.Store(Size.Word, Data, ip + 4, 0x0040);                               // id 0, DF
            asm.Store(Size.Byte, Data, ip + 8, 64);
            asm.Store(Size.Byte, Data, ip + 9, protocol);
        }
        else
        {
            asm.Store(Size.Word, Data, ip, 0x60);                                     // version 6, class 0, flow 0
            asm.Store(Size.Half, Data, ip + 4, Swap16(payload));
            asm.Store(Size.Byte, Data, ip + 6, protocol);
            asm.Store(Size.Byte, Data, ip + 7, 64);
        }
        short source = (short)(ip + (ipLength == 20 ? 12 : 8)), destination = (short)(source + 4 * words);
        for (int i = 0; i < words; i++)
        {
            PacketRecord.Load(asm, PacketRecord.DestinationAddress(i), Register.R1);
            asm.FromBigEndian(Register.R1, 32);
            asm.Store(Size.Word, Data, (short)(source + 4 * i), Register.R1);
            PacketRecord.Load(asm, PacketRecord.SourceAddress(i), Register.R1);
            asm.FromBigEndian(Register.R1, 32);
            asm.Store(Size.Word, Data, (short)(destination + 4 * i), Register.R1);
        }
        if (ipLength == 20)
        {
            SumAddresses(asm, 1);
            asm.Alu64(AluOp.Add, Register.R2, 0x4500 + 20 + payload + 0x4000 + (64 << 8 | protocol));
            StoreChecksum(asm, ip + 10);
        }
    }

    /// <summary>r2 = the sum of the packet's source and destination address words (host order).</summary>
    private static void SumAddresses(Assembler asm, int words)
    {
        asm.Mov(Register.R2, 0L);
        for (int i = 0; i < words; i++)
        {
            PacketRecord.Load(asm, PacketRecord.SourceAddress(i), Register.R1);
            asm.Alu64(AluOp.Add, Register.R2, Register.R1);
            PacketRecord.Load(asm, PacketRecord.DestinationAddress(i), Register.R1);
            asm.Alu64(AluOp.Add, Register.R2, Register.R1);
        }
    }

    /// <summary>Folds the sum in r2 to 16 bits, complements it and stores it in network order at <paramref name="at"/>.</summary>
    private static void StoreChecksum(Assembler asm, short at)
    {
        asm.Mov(Register.R1, Register.R2);
        asm.Alu64(AluOp.Rsh, Register.R1, 32);
        asm.Mov32(Register.R2, Register.R2);
        asm.Alu64(AluOp.Add, Register.R2, Register.R1);
        for (int i = 0; i < 3; i++)
        {
            asm.Mov(Register.R1, Register.R2);
            asm.Alu64(AluOp.Rsh, Register.R1, 16);
            asm.Alu64(AluOp.And, Register.R2, 0xffff);
            asm.Alu64(AluOp.Add, Register.R2, Register.R1);
        }
        asm.Alu64(AluOp.Xor, Register.R2, 0xffff);
        asm.FromBigEndian(Register.R2, 16);
        asm.Store(Size.Half, Data, at, Register.R2);
    }

    /// <summary>Grows the packet by <paramref name="head"/> bytes in front, cuts it to <paramref name="total"/>, and reloads the pointers.</summary>
    private static void Resize(Assembler asm, int head, int total, Label drop)
    {
        if (head > 0)
        {
            asm.Mov(Register.R1, Ctx);
            asm.Mov(Register.R2, -head);
            asm.Call(Helper.XdpAdjustHead);
            asm.Jump(JumpOp.Jne, Register.R0, 0, drop);
        }
        LoadPointers(asm);
        asm.Mov(Register.R3, End);
        asm.Alu64(AluOp.Sub, Register.R3, Data);            // the length now
        asm.Mov(Register.R2, total);
        asm.Alu64(AluOp.Sub, Register.R2, Register.R3);
        asm.Mov(Register.R1, Ctx);
        asm.Call(Helper.XdpAdjustTail);
        asm.Jump(JumpOp.Jne, Register.R0, 0, drop);
        LoadPointers(asm);
        asm.Mov(Register.R1, Data);
        asm.Alu64(AluOp.Add, Register.R1, total);
        asm.Jump(JumpOp.Jgt, Register.R1, End, drop);
    }

    /// <summary>The answer's Ethernet addresses are the packet's, swapped (read from <paramref name="from"/>, where they are now).</summary>
    private static void SwapEthernet(Assembler asm, int from)
    {
        asm.Load(Size.Word, Register.R1, Data, (short)from);
        asm.Load(Size.Half, Register.R2, Data, (short)(from + 4));
        asm.Load(Size.Word, Register.R3, Data, (short)(from + 6));
        asm.Load(Size.Half, Register.R4, Data, (short)(from + 10));
        asm.Store(Size.Word, Data, 0, Register.R3);
        asm.Store(Size.Half, Data, 4, Register.R4);
        asm.Store(Size.Word, Data, 6, Register.R1);
        asm.Store(Size.Half, Data, 10, Register.R2);
    }

    private static void LoadPointers(Assembler asm)
    {
        asm.Load(Size.Word, Data, Ctx, 0);
        asm.Load(Size.Word, End, Ctx, 4);
    }

    private static void Transmit(Assembler asm)
    {
        asm.Mov(Register.R0, XdpFlavour.Transmit);
        asm.Exit();
    }

    private static int Swap16(int value) => (value & 0xff) << 8 | (value >> 8) & 0xff;
}
