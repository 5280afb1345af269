using Bpfilter.Engine.Ebpf;

namespace Bpfilter.Engine.Compiler;

/// <summary>
/// Parses IPv4 through direct packet access (XDP, TC, cgroup_skb): a pointer to the start and one to the end,
/// every read after a bounds check the verifier can follow. Not IPv4 (by EtherType at L2, by the version nibble
/// 6 at L3) goes to <c>notIpv4</c>; a cut-short header, a wrong version or IHL goes to <c>malformed</c>. Ports are
/// read only for the first (or only) fragment of TCP and UDP with 4 header bytes present, else NoPort.
/// </summary>
internal static class DirectPacketParser
{
    public const Register Start = Register.R7;
    public const Register End = Register.R8;
    private const short EtherTypeOffset = 12;
    private const int EtherTypeIpv4WireOrder = 0x0008; // htons(0x0800) read little-endian
    private const int FragmentOffsetMaskWireOrder = 0xff1f; // htons(0x1fff)

    public static void Emit(Assembler asm, int networkOffset, Label notIpv4, Label malformed)
    {
        int l3 = networkOffset;
        var tmp = Register.R9;
        var ihl = Registers.Scratch;

        if (l3 > 0)
        {
            BoundsCheck(asm, l3, malformed);
            asm.Load(Size.Half, tmp, Start, EtherTypeOffset);
            asm.Jump(JumpOp.Jne, tmp, EtherTypeIpv4WireOrder, notIpv4);
        }
        else
        {
            BoundsCheck(asm, 1, malformed);
            asm.Load(Size.Byte, tmp, Start, 0);
            asm.Alu64(AluOp.Rsh, tmp, 4);
            asm.Jump(JumpOp.Jeq, tmp, 6, notIpv4);
        }
        BoundsCheck(asm, l3 + 20, malformed);
        // Version 4, IHL 5..15 (header length 20..60 bytes, the range the verifier needs for the L4 pointer).
        asm.Load(Size.Byte, ihl, Start, (short)l3);
        asm.Mov(tmp, ihl);
        asm.Alu64(AluOp.Rsh, tmp, 4);
        asm.Jump(JumpOp.Jne, tmp, 4, malformed);
        asm.Alu64(AluOp.And, ihl, 0x0f);
        asm.Alu64(AluOp.Lsh, ihl, 2);
        asm.Jump(JumpOp.Jlt, ihl, 20, malformed);
        // Options, if any, must be present too.
        asm.Mov(tmp, Start);
        asm.Alu64(AluOp.Add, tmp, l3);
        asm.Alu64(AluOp.Add, tmp, ihl);
        asm.Jump(JumpOp.Jgt, tmp, End, malformed);

        asm.Load(Size.Word, Registers.SourceAddress, Start, (short)(l3 + 12));
        asm.Load(Size.Word, Registers.DestinationAddress, Start, (short)(l3 + 16));
        asm.Load(Size.Byte, Registers.Protocol, Start, (short)(l3 + 9));
        asm.Mov(Registers.SourcePort, Registers.NoPort);
        asm.Mov(Registers.DestinationPort, Registers.NoPort);

        var done = asm.NewLabel("parsed");
        var ports = asm.NewLabel("ports");
        asm.Load(Size.Half, tmp, Start, (short)(l3 + 6));
        asm.Jump(JumpOp.Jset, tmp, FragmentOffsetMaskWireOrder, done);
        asm.Jump(JumpOp.Jeq, Registers.Protocol, 6, ports);
        asm.Jump(JumpOp.Jeq, Registers.Protocol, 17, ports);
        asm.Jump(done);

        asm.Mark(ports);
        // tmp = start of L4 (variable offset); the bounds check on tmp + 4 lets the verifier allow both loads.
        asm.Mov(tmp, Start);
        asm.Alu64(AluOp.Add, tmp, l3);
        asm.Alu64(AluOp.Add, tmp, ihl);
        asm.Mov(Registers.Scratch, tmp);
        asm.Alu64(AluOp.Add, Registers.Scratch, 4);
        asm.Jump(JumpOp.Jgt, Registers.Scratch, End, done);
        asm.Load(Size.Half, Registers.SourcePort, tmp, 0);
        asm.Load(Size.Half, Registers.DestinationPort, tmp, 2);
        asm.Mark(done);
    }

    /// <summary>if (start + bytes > end) goto fail</summary>
    private static void BoundsCheck(Assembler asm, int bytes, Label fail)
    {
        asm.Mov(Register.R9, Start);
        asm.Alu64(AluOp.Add, Register.R9, bytes);
        asm.Jump(JumpOp.Jgt, Register.R9, End, fail);
    }
}
