using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Compiler;

/// <summary>
/// Netfilter (BPF_PROG_TYPE_NETFILTER): the context is struct bpf_nf_ctx {state@0; skb@8}, the packet starts at
/// the IP header, and it is read only through the kfuncs bpf_dynptr_from_skb and bpf_dynptr_slice (no
/// skb_load_bytes here). Kfunc calls clobber r1–r5, so the header slice is kept in r7, the header length in r9,
/// and the field registers are filled only after the last call. One program serves the IPv4 and the IPv6 link:
/// IPv6 packets (version 6) are "not ipv4".
/// </summary>
internal sealed class NetfilterFlavour : HookFlavour
{
    public static readonly NetfilterFlavour Instance = new();
    public const uint AttachTypeNetfilter = 45;
    private const int FragmentOffsetMaskWireOrder = 0xff1f;

    public override ProgramType ProgramType => ProgramType.Netfilter;
    public override uint ExpectedAttachType => AttachTypeNetfilter;
    public override int ReturnCode(Verdict verdict) => verdict == Verdict.Accept ? 1 /* NF_ACCEPT */ : 0 /* NF_DROP */;

    public override void EmitParse(Assembler asm, Label notIpv4, Label malformed)
    {
        var header = Register.R7;
        var ihl = Register.R9;

        asm.Load(Size.DoubleWord, Register.R1, Register.R1, 8); // ctx->skb
        asm.Mov(Register.R2, 0L);
        StackPointer(asm, Register.R3, StackSlots.Dynptr);
        asm.CallKfunc("bpf_dynptr_from_skb");
        asm.Jump(JumpOp.Jne, Register.R0, 0, malformed);

        StackPointer(asm, Register.R1, StackSlots.Dynptr);
        asm.CallKfunc("bpf_dynptr_size");
        asm.Store(Size.DoubleWord, Register.R10, StackSlots.PacketLength, Register.R0);

        for (short offset = 0; offset < 24; offset += 8) asm.Store(Size.DoubleWord, Register.R10, (short)(StackSlots.HeaderBuffer + offset), 0);
        Slice(asm, offset: null, StackSlots.HeaderBuffer, 20);
        asm.Jump(JumpOp.Jeq, Register.R0, 0, malformed); // shorter than 20 bytes: the IP stack never passes such a packet
        asm.Mov(header, Register.R0);

        asm.Load(Size.Byte, ihl, header, 0);
        asm.Mov(Registers.Scratch, ihl);
        asm.Alu64(AluOp.Rsh, Registers.Scratch, 4);
        asm.Jump(JumpOp.Jeq, Registers.Scratch, 6, notIpv4);
        asm.Jump(JumpOp.Jne, Registers.Scratch, 4, malformed);
        asm.Alu64(AluOp.And, ihl, 0x0f);
        asm.Alu64(AluOp.Lsh, ihl, 2);
        asm.Jump(JumpOp.Jlt, ihl, 20, malformed);
        asm.Load(Size.DoubleWord, Registers.Scratch, Register.R10, StackSlots.PacketLength);
        asm.Jump(JumpOp.Jlt, Registers.Scratch, ihl, malformed);

        var noPorts = asm.NewLabel("no_ports");
        var ports = asm.NewLabel("ports");
        var fields = asm.NewLabel("fields");
        asm.Load(Size.Half, Registers.Scratch, header, 6);
        asm.Jump(JumpOp.Jset, Registers.Scratch, FragmentOffsetMaskWireOrder, noPorts);
        asm.Load(Size.Byte, Registers.Scratch, header, 9);
        asm.Jump(JumpOp.Jeq, Registers.Scratch, 6, ports);
        asm.Jump(JumpOp.Jeq, Registers.Scratch, 17, ports);
        asm.Jump(noPorts);

        asm.Mark(ports);
        asm.Store(Size.DoubleWord, Register.R10, StackSlots.PortBuffer, 0);
        Slice(asm, offset: ihl, StackSlots.PortBuffer, 4);
        asm.Jump(JumpOp.Jeq, Register.R0, 0, noPorts);
        asm.Load(Size.Half, Registers.SourcePort, Register.R0, 0);
        asm.Load(Size.Half, Registers.DestinationPort, Register.R0, 2);
        asm.Jump(fields);
        asm.Mark(noPorts);
        asm.Mov(Registers.SourcePort, Registers.NoPort);
        asm.Mov(Registers.DestinationPort, Registers.NoPort);

        asm.Mark(fields);
        asm.Load(Size.Word, Registers.SourceAddress, header, 12);
        asm.Load(Size.Word, Registers.DestinationAddress, header, 16);
        asm.Load(Size.Byte, Registers.Protocol, header, 9);
    }

    /// <summary>r0 = bpf_dynptr_slice(&amp;dynptr, offset, buffer, size): a pointer to <paramref name="size"/> bytes, or NULL past the end.</summary>
    private static void Slice(Assembler asm, Register? offset, short buffer, int size)
    {
        StackPointer(asm, Register.R1, StackSlots.Dynptr);
        if (offset is { } reg) asm.Mov(Register.R2, reg);
        else asm.Mov(Register.R2, 0L);
        StackPointer(asm, Register.R3, buffer);
        asm.Mov(Register.R4, size);
        asm.CallKfunc("bpf_dynptr_slice");
    }

    private static void StackPointer(Assembler asm, Register dst, short offset)
    {
        asm.Mov(dst, Register.R10);
        asm.Alu64(AluOp.Add, dst, offset);
    }
}
