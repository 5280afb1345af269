using Bpfilter.Engine.Ebpf;

namespace Bpfilter.Engine.Compiler;

/// <summary>
/// Emits the one-time header parse. Packets that are not IPv4 go to <c>notIpv4</c>; IPv4 packets whose header
/// is cut short or whose version or IHL is wrong go to <c>malformed</c>. Otherwise the field registers are
/// filled: ports only for the first (or only) fragment of TCP and UDP with 4 header bytes present, else NoPort.
/// </summary>
internal static class Ipv4HeaderParser
{
    private const short EtherTypeOffset = 12;
    private const int EtherTypeIpv4WireOrder = 0x0008; // htons(0x0800) read little-endian
    private const int FragmentOffsetMaskWireOrder = 0xff1f; // htons(0x1fff)

    public static void Emit(Assembler asm, HookFlavour hook, Label notIpv4, Label malformed)
    {
        int l3 = hook.NetworkOffset;
        var p = Registers.PacketStart;
        var end = Registers.PacketEnd;
        var tmp = Registers.CounterSlot;
        var ihl = Registers.Scratch;

        if (l3 > 0)
        {
            asm.Mov(tmp, p);
            asm.Alu64(AluOp.Add, tmp, l3);
            asm.Jump(JumpOp.Jgt, tmp, end, malformed);
            asm.Load(Size.Half, tmp, p, EtherTypeOffset);
            asm.Jump(JumpOp.Jne, tmp, EtherTypeIpv4WireOrder, notIpv4);
        }
        // The fixed 20-byte header must be present.
        asm.Mov(tmp, p);
        asm.Alu64(AluOp.Add, tmp, l3 + 20);
        asm.Jump(JumpOp.Jgt, tmp, end, malformed);
        // Version 4, IHL 5..15 (header length 20..60 bytes, the range the verifier needs for the L4 pointer).
        asm.Load(Size.Byte, ihl, p, (short)l3);
        asm.Mov(tmp, ihl);
        asm.Alu64(AluOp.Rsh, tmp, 4);
        asm.Jump(JumpOp.Jne, tmp, 4, malformed);
        asm.Alu64(AluOp.And, ihl, 0x0f);
        asm.Alu64(AluOp.Lsh, ihl, 2);
        asm.Jump(JumpOp.Jlt, ihl, 20, malformed);
        // Options, if any, must be present too.
        asm.Mov(tmp, p);
        asm.Alu64(AluOp.Add, tmp, l3);
        asm.Alu64(AluOp.Add, tmp, ihl);
        asm.Jump(JumpOp.Jgt, tmp, end, malformed);

        asm.Load(Size.Word, Registers.SourceAddress, p, (short)(l3 + 12));
        asm.Load(Size.Word, Registers.DestinationAddress, p, (short)(l3 + 16));
        asm.Load(Size.Byte, Registers.Protocol, p, (short)(l3 + 9));
        asm.Mov(Registers.SourcePort, Registers.NoPort);
        asm.Mov(Registers.DestinationPort, Registers.NoPort);

        var done = asm.NewLabel("parsed");
        var ports = asm.NewLabel("ports");
        asm.Load(Size.Half, Registers.CounterSlot, p, (short)(l3 + 6));
        asm.Jump(JumpOp.Jset, Registers.CounterSlot, FragmentOffsetMaskWireOrder, done);
        asm.Jump(JumpOp.Jeq, Registers.Protocol, 6, ports);
        asm.Jump(JumpOp.Jeq, Registers.Protocol, 17, ports);
        asm.Jump(done);

        asm.Mark(ports);
        // tmp = start of L4 (variable offset); the bounds check on tmp + 4 lets the verifier allow both loads.
        asm.Mov(tmp, p);
        asm.Alu64(AluOp.Add, tmp, l3);
        asm.Alu64(AluOp.Add, tmp, ihl);
        asm.Mov(Registers.Scratch, tmp);
        asm.Alu64(AluOp.Add, Registers.Scratch, 4);
        asm.Jump(JumpOp.Jgt, Registers.Scratch, end, done);
        asm.Load(Size.Half, Registers.SourcePort, tmp, 0);
        asm.Load(Size.Half, Registers.DestinationPort, tmp, 2);
        asm.Mark(done);
    }
}
