using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Compiler;

/// <summary>
/// Netfilter (BPF_PROG_TYPE_NETFILTER): the context is struct bpf_nf_ctx {state@0; skb@8}, the packet starts at the
/// IP header and is read only through the kfuncs bpf_dynptr_from_skb and bpf_dynptr_slice (netfilter programs have no
/// skb_load_bytes). One program serves the IPv4 and the IPv6 link.
/// </summary>
internal sealed class NetfilterFlavour(Hook hook) : HookFlavour
{
    private static readonly Dictionary<Hook, NetfilterFlavour> ByHook = new();
    public const uint AttachTypeNetfilter = 45;

    public static new NetfilterFlavour For(Hook hook)
    {
        lock (ByHook)
        {
            if (!ByHook.TryGetValue(hook, out var flavour)) ByHook[hook] = flavour = new NetfilterFlavour(hook);
            return flavour;
        }
    }

    public override ProgramType ProgramType => ProgramType.Netfilter;
    public override uint ExpectedAttachType => AttachTypeNetfilter;
    public override int ReturnCode(VerdictKind verdict) => verdict == VerdictKind.Accept ? 1 /* NF_ACCEPT */ : 0 /* NF_DROP */;
    public override int NetworkOffset => 0;

    // struct nf_hook_state {u8 hook@0; u8 pf@1; struct net_device *in@8, *out@16; ...}: in is set up to forward, out from forward on.
    public override bool SeesInInterface => hook is Hook.NfPrerouting or Hook.NfInput or Hook.NfForward;
    public override bool SeesOutInterface => hook is Hook.NfForward or Hook.NfOutput or Hook.NfPostrouting;

    /// <summary>Where the kernel passes packets to this hook: for messages about what it cannot see.</summary>
    public Hook Hook => hook;

    /// <summary>
    /// Reads the devices' ifindex and the mark through the context's kernel pointers, at offsets from the running
    /// kernel's BTF (the verifier allows such loads; it makes them fault-safe, so a NULL device reads 0).
    /// </summary>
    public override void EmitPrologue(Assembler asm, Label malformed)
    {
        asm.Mov(Register.R6, Register.R1);
        asm.Load(Size.DoubleWord, Register.R2, Register.R6, 0); // ctx->state
        short ifindex = (short)Kernel.Btf.MemberOffset("net_device", "ifindex");
        if (SeesInInterface) CopyDeviceIndex(asm, 8, ifindex, PacketRecord.InInterface);
        if (SeesOutInterface) CopyDeviceIndex(asm, 16, ifindex, PacketRecord.OutInterface);
        asm.Load(Size.DoubleWord, Register.R1, Register.R6, 8); // ctx->skb
        asm.Load(Size.Word, Register.R0, Register.R1, (short)Kernel.Btf.MemberOffset("sk_buff", "mark"));
        PacketRecord.Store(asm, PacketRecord.Mark, Register.R0);
        asm.Load(Size.DoubleWord, Register.R1, Register.R6, 8); // ctx->skb
        asm.Mov(Register.R2, 0L);
        StackPointer(asm, Register.R3, PacketRecord.Dynptr);
        asm.CallKfunc("bpf_dynptr_from_skb");
        asm.Jump(JumpOp.Jne, Register.R0, 0, malformed);
        StackPointer(asm, Register.R1, PacketRecord.Dynptr);
        asm.CallKfunc("bpf_dynptr_size");
        asm.Store(Size.DoubleWord, Register.R10, PacketRecord.PacketLength, Register.R0);
    }

    /// <summary>r0 = bpf_dynptr_slice(&amp;dynptr, offset, buffer, size): a pointer to the bytes, or NULL past the end.</summary>
    public override void EmitHeader(Assembler asm, Register? offset, int constantOffset, int size, Label tooShort)
    {
        if (offset is { } reg) asm.Mov(Register.R2, reg);
        else asm.Mov(Register.R2, constantOffset);
        StackPointer(asm, Register.R1, PacketRecord.Dynptr);
        StackPointer(asm, Register.R3, PacketRecord.Buffer);
        asm.Mov(Register.R4, size);
        asm.CallKfunc("bpf_dynptr_slice");
        asm.Jump(JumpOp.Jeq, Register.R0, 0, tooShort);
    }

    private static void CopyDeviceIndex(Assembler asm, short device, short ifindex, short field)
    {
        asm.Load(Size.DoubleWord, Register.R3, Register.R2, device);
        asm.Load(Size.Word, Register.R0, Register.R3, ifindex);
        PacketRecord.Store(asm, field, Register.R0);
    }

    private static void StackPointer(Assembler asm, Register dst, short offset)
    {
        asm.Mov(dst, Register.R10);
        asm.Alu64(AluOp.Add, dst, offset);
    }
}
