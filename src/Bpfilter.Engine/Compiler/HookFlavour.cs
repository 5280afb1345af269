using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Compiler;

/// <summary>
/// What differs between hooks: the program type, how to reach the packet (the parser), how long it is, and how
/// to say a verdict. Each flavour's parser leaves the field registers filled and the length at StackSlots.PacketLength.
/// </summary>
internal abstract class HookFlavour
{
    public abstract ProgramType ProgramType { get; }
    public virtual uint ExpectedAttachType => 0;
    public abstract int ReturnCode(Verdict verdict);
    public abstract void EmitParse(Assembler asm, Label notIpv4, Label malformed);

    public static HookFlavour For(Hook hook) => hook switch
    {
        Hook.Xdp => XdpFlavour.Instance,
        Hook.TcIngress or Hook.TcEgress => TcFlavour.Instance,
        Hook.CgroupIngress => CgroupSkbFlavour.Ingress,
        Hook.CgroupEgress => CgroupSkbFlavour.Egress,
        _ => NetfilterFlavour.Instance,
    };
}

/// <summary>XDP: struct xdp_md {u32 data; u32 data_end; ...}; the packet starts at the Ethernet header.</summary>
internal sealed class XdpFlavour : HookFlavour
{
    public static readonly XdpFlavour Instance = new();
    public override ProgramType ProgramType => ProgramType.Xdp;
    public override int ReturnCode(Verdict verdict) => verdict == Verdict.Accept ? 2 /* XDP_PASS */ : 1 /* XDP_DROP */;

    public override void EmitParse(Assembler asm, Label notIpv4, Label malformed)
    {
        asm.Load(Size.Word, DirectPacketParser.Start, Register.R1, 0);
        asm.Load(Size.Word, DirectPacketParser.End, Register.R1, 4);
        asm.Mov(Registers.Scratch, DirectPacketParser.End);
        asm.Alu64(AluOp.Sub, Registers.Scratch, DirectPacketParser.Start);
        asm.Store(Size.DoubleWord, Register.R10, StackSlots.PacketLength, Registers.Scratch);
        DirectPacketParser.Emit(asm, networkOffset: 14, notIpv4, malformed);
    }
}

/// <summary>TC (TCX): struct __sk_buff {u32 len@0; ... u32 data@76; u32 data_end@80}; the packet starts at L2.</summary>
internal sealed class TcFlavour : HookFlavour
{
    public static readonly TcFlavour Instance = new();
    public override ProgramType ProgramType => ProgramType.SchedCls;

    /// <summary>Accept is TCX_NEXT (−1), not TCX_PASS, so programs after ours on the same hook still run.</summary>
    public override int ReturnCode(Verdict verdict) => verdict == Verdict.Accept ? -1 : 2 /* TCX_DROP */;

    public override void EmitParse(Assembler asm, Label notIpv4, Label malformed)
    {
        SkbAccess.EmitPointersAndLength(asm);
        DirectPacketParser.Emit(asm, networkOffset: 14, notIpv4, malformed);
    }
}

/// <summary>cgroup_skb: the same __sk_buff, but the packet starts at the IP header.</summary>
internal sealed class CgroupSkbFlavour(uint attachType) : HookFlavour
{
    public static readonly CgroupSkbFlavour Ingress = new(0), Egress = new(1);
    public override ProgramType ProgramType => ProgramType.CgroupSkb;
    public override uint ExpectedAttachType => attachType;
    public override int ReturnCode(Verdict verdict) => verdict == Verdict.Accept ? 1 : 0;

    public override void EmitParse(Assembler asm, Label notIpv4, Label malformed)
    {
        SkbAccess.EmitPointersAndLength(asm);
        DirectPacketParser.Emit(asm, networkOffset: 0, notIpv4, malformed);
    }
}

internal static class SkbAccess
{
    public static void EmitPointersAndLength(Assembler asm)
    {
        asm.Load(Size.Word, Registers.Scratch, Register.R1, 0);
        asm.Store(Size.DoubleWord, Register.R10, StackSlots.PacketLength, Registers.Scratch);
        asm.Load(Size.Word, DirectPacketParser.Start, Register.R1, 76);
        asm.Load(Size.Word, DirectPacketParser.End, Register.R1, 80);
    }
}
