using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Compiler.Matchers;

/// <summary>
/// iptables' -m limit as a generic cell rate algorithm on the rule's slot: a packet passes when the theoretical
/// arrival time, advanced by one interval, stays within burst intervals of now; passing advances it (compare-and-
/// exchange, so CPUs racing for the last token do not both take it: the loser does not match). Emitted last, so only
/// packets that meet every other condition take a token.
/// </summary>
internal sealed record LimitTest(MapSpec Map, int Slot, LimitMatch Limit) : FieldTest
{
    public override void Emit(Assembler asm, bool jumpIfHolds, Label target)
    {
        var fails = jumpIfHolds ? asm.NewLabel("limit_spent") : target;
        // r6–r9 are free while rules are tested (they hold the verdict and slot only on the way to the epilogue).
        PacketRecord.Store(asm, PacketRecord.LimitScratch, Slot);
        asm.LoadMap(Register.R1, Map);
        asm.Mov(Register.R2, Register.R10);
        asm.Alu64(AluOp.Add, Register.R2, PacketRecord.LimitScratch);
        asm.Call(Helper.MapLookupElem);
        asm.Jump(JumpOp.Jeq, Register.R0, 0, fails);
        asm.Mov(Register.R7, Register.R0);
        asm.Call(Helper.KtimeGetNs);
        asm.Mov(Register.R8, Register.R0);                      // now
        asm.Load(Size.DoubleWord, Register.R9, Register.R7, 0); // the arrival time as read: what the exchange expects
        asm.Mov(Register.R1, Register.R9);
        var late = asm.NewLabel("limit_from_now");
        asm.Jump(JumpOp.Jge, Register.R1, Register.R8, late);
        asm.Mov(Register.R1, Register.R8);                      // an idle bucket starts from now
        asm.Mark(late);
        asm.LoadImm64(Register.R2, Limit.NanosecondsPerToken);
        asm.Alu64(AluOp.Add, Register.R1, Register.R2);         // the new arrival time
        asm.Mov(Register.R3, Register.R1);
        asm.Alu64(AluOp.Sub, Register.R3, Register.R8);
        asm.LoadImm64(Register.R4, Limit.NanosecondsPerToken * Limit.Burst);
        asm.Jump(JumpOp.Jgt, Register.R3, Register.R4, fails);
        asm.Mov(Register.R0, Register.R9);
        asm.AtomicCompareExchange(Size.DoubleWord, Register.R7, 0, Register.R1);
        asm.Jump(JumpOp.Jne, Register.R0, Register.R9, fails);
        if (jumpIfHolds)
        {
            asm.Jump(target);
            asm.Mark(fails);
        }
    }
}
