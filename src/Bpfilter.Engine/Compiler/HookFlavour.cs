using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Compiler;

/// <summary>
/// What differs between hooks: the program type, how to say a verdict, what the context tells about the packet
/// (length, interfaces, mark), and how to reach the packet's bytes. The parser (<see cref="HeaderParser"/>) is the
/// same for all; it asks the flavour for a pointer to each header it needs.
/// </summary>
internal abstract class HookFlavour
{
    public abstract ProgramType ProgramType { get; }
    public virtual uint ExpectedAttachType => 0;
    public abstract int ReturnCode(VerdictKind verdict);

    /// <summary>Where the packet starts: 14 for hooks that see the Ethernet header, 0 for those that start at IP.</summary>
    public abstract int NetworkOffset { get; }

    /// <summary>True when the hook knows the interface the packet came in on, or goes out of.</summary>
    public abstract bool SeesInInterface { get; }
    public abstract bool SeesOutInterface { get; }

    /// <summary>True when the packet has an skb, and so a mark.</summary>
    public virtual bool SeesMark => true;

    /// <summary>True when the hook can answer a packet (XDP sends the rewritten packet back out with XDP_TX).</summary>
    public virtual bool CanReply => false;

    /// <summary>
    /// Reads the context into the record (length, interfaces, mark) and sets up packet access. r6 keeps the context
    /// or what access needs (r6–r8 belong to the flavour until the rules start).
    /// </summary>
    public abstract void EmitPrologue(Assembler asm, Label malformed);

    /// <summary>
    /// r0 = a pointer to <paramref name="size"/> readable bytes at <paramref name="offset"/> (a register, or the
    /// constant <paramref name="constantOffset"/> when null), or a jump to <paramref name="tooShort"/>. Clobbers r0–r5.
    /// </summary>
    public abstract void EmitHeader(Assembler asm, Register? offset, int constantOffset, int size, Label tooShort);

    public static HookFlavour For(Hook hook) => hook switch
    {
        Hook.Xdp => XdpFlavour.Instance,
        Hook.TcIngress => TcFlavour.Ingress,
        Hook.TcEgress => TcFlavour.Egress,
        Hook.CgroupIngress => CgroupSkbFlavour.Ingress,
        Hook.CgroupEgress => CgroupSkbFlavour.Egress,
        _ => NetfilterFlavour.For(hook),
    };
}

/// <summary>Direct packet access (XDP, TC, cgroup_skb): r7 = data, r8 = data_end; every read after a bounds check.</summary>
internal abstract class DirectAccessFlavour : HookFlavour
{
    protected const Register Data = Register.R7, DataEnd = Register.R8;

    public override void EmitHeader(Assembler asm, Register? offset, int constantOffset, int size, Label tooShort)
    {
        asm.Mov(Register.R0, Data);
        if (offset is { } reg) asm.Alu64(AluOp.Add, Register.R0, reg);
        else if (constantOffset != 0) asm.Alu64(AluOp.Add, Register.R0, constantOffset);
        asm.Mov(Register.R1, Register.R0);
        asm.Alu64(AluOp.Add, Register.R1, size);
        asm.Jump(JumpOp.Jgt, Register.R1, DataEnd, tooShort);
    }
}

/// <summary>XDP: struct xdp_md {u32 data@0; u32 data_end@4; u32 data_meta@8; u32 ingress_ifindex@12; ...}.</summary>
internal sealed class XdpFlavour : DirectAccessFlavour
{
    public static readonly XdpFlavour Instance = new();
    public override ProgramType ProgramType => ProgramType.Xdp;
    public override int ReturnCode(VerdictKind verdict) => verdict == VerdictKind.Accept ? 2 /* XDP_PASS */ : 1 /* XDP_DROP */;
    public override int NetworkOffset => 14;
    public override bool SeesInInterface => true;
    public override bool SeesOutInterface => false;
    public override bool SeesMark => false;
    public override bool CanReply => true;

    /// <summary>XDP_TX: the rewritten packet goes back out of the interface it came in on.</summary>
    public const int Transmit = 3;

    public override void EmitPrologue(Assembler asm, Label malformed)
    {
        asm.Store(Size.DoubleWord, Register.R10, PacketRecord.Context, Register.R1);
        asm.Load(Size.Word, Data, Register.R1, 0);
        asm.Load(Size.Word, DataEnd, Register.R1, 4);
        asm.Load(Size.Word, Register.R0, Register.R1, 12);
        PacketRecord.Store(asm, PacketRecord.InInterface, Register.R0);
        asm.Mov(Register.R0, DataEnd);
        asm.Alu64(AluOp.Sub, Register.R0, Data);
        asm.Store(Size.DoubleWord, Register.R10, PacketRecord.PacketLength, Register.R0);
    }
}

/// <summary>The __sk_buff fields TC and cgroup_skb read: len@0, mark@8, ingress_ifindex@36, ifindex@40, data@76, data_end@80.</summary>
internal abstract class SkbFlavour : DirectAccessFlavour
{
    protected static void EmitSkbPrologue(Assembler asm, short? inInterfaceField, short? outInterfaceField)
    {
        asm.Load(Size.Word, Register.R0, Register.R1, 0);
        asm.Store(Size.DoubleWord, Register.R10, PacketRecord.PacketLength, Register.R0);
        asm.Load(Size.Word, Register.R0, Register.R1, 8);
        PacketRecord.Store(asm, PacketRecord.Mark, Register.R0);
        if (inInterfaceField is { } inField)
        {
            asm.Load(Size.Word, Register.R0, Register.R1, inField);
            PacketRecord.Store(asm, PacketRecord.InInterface, Register.R0);
        }
        if (outInterfaceField is { } outField)
        {
            asm.Load(Size.Word, Register.R0, Register.R1, outField);
            PacketRecord.Store(asm, PacketRecord.OutInterface, Register.R0);
        }
        asm.Load(Size.Word, Data, Register.R1, 76);
        asm.Load(Size.Word, DataEnd, Register.R1, 80);
    }
}

/// <summary>TC (TCX) on one interface: the packet starts at L2. Ingress knows where it came in, egress where it goes out.</summary>
internal sealed class TcFlavour(bool ingress) : SkbFlavour
{
    public static readonly TcFlavour Ingress = new(true), Egress = new(false);
    public override ProgramType ProgramType => ProgramType.SchedCls;

    /// <summary>Accept is TCX_NEXT (−1), not TCX_PASS, so programs after ours on the same hook still run.</summary>
    public override int ReturnCode(VerdictKind verdict) => verdict == VerdictKind.Accept ? -1 : 2 /* TCX_DROP */;
    public override int NetworkOffset => 14;
    public override bool SeesInInterface => ingress;
    public override bool SeesOutInterface => !ingress;

    public override void EmitPrologue(Assembler asm, Label malformed) =>
        EmitSkbPrologue(asm, ingress ? (short)36 : null, ingress ? null : (short)40);
}

/// <summary>cgroup_skb: the same __sk_buff, but the packet starts at the IP header; skb->ifindex is the device it uses.</summary>
internal sealed class CgroupSkbFlavour(uint attachType) : SkbFlavour
{
    public static readonly CgroupSkbFlavour Ingress = new(0), Egress = new(1);
    public override ProgramType ProgramType => ProgramType.CgroupSkb;
    public override uint ExpectedAttachType => attachType;
    public override int ReturnCode(VerdictKind verdict) => verdict == VerdictKind.Accept ? 1 : 0;
    public override int NetworkOffset => 0;
    public override bool SeesInInterface => attachType == 0;
    public override bool SeesOutInterface => attachType == 1;

    public override void EmitPrologue(Assembler asm, Label malformed) =>
        EmitSkbPrologue(asm, attachType == 0 ? (short)40 : null, attachType == 1 ? (short)40 : null);
}
