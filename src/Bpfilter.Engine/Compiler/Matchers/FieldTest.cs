using Bpfilter.Engine.Ebpf;

namespace Bpfilter.Engine.Compiler.Matchers;

/// <summary>
/// One test of packet record fields, emitted as "jump if it holds" or "jump if it fails". Every test loads its field
/// into r0 and changes it with an ALU operation before comparing: the verifier then learns nothing about the record
/// (an ALU result carries no link to where it was loaded from), so the state at each rule's start stays the same on
/// every path, and a long chain verifies in time proportional to its length.
/// </summary>
internal abstract record FieldTest
{
    public abstract void Emit(Assembler asm, bool jumpIfHolds, Label target);
}

/// <summary>(field &amp; mask) == value.</summary>
internal sealed record FieldEquals(short Field, uint Mask, uint Value) : FieldTest
{
    public FieldEquals(short field, uint value) : this(field, uint.MaxValue, value)
    {
    }

    public override void Emit(Assembler asm, bool jumpIfHolds, Label target)
    {
        PacketRecord.Load(asm, Field);
        if (Mask != uint.MaxValue) asm.Alu32(AluOp.And, Register.R0, unchecked((int)Mask));
        asm.Alu32(AluOp.Xor, Register.R0, unchecked((int)Value));
        asm.Jump32(jumpIfHolds ? JumpOp.Jeq : JumpOp.Jne, Register.R0, 0, target);
    }
}

/// <summary>First &lt;= field &lt;= Last (unsigned): field − First &lt;= Last − First, one compare.</summary>
internal sealed record FieldInRange(short Field, uint First, uint Last) : FieldTest
{
    public override void Emit(Assembler asm, bool jumpIfHolds, Label target)
    {
        if (First == Last)
        {
            new FieldEquals(Field, First).Emit(asm, jumpIfHolds, target);
            return;
        }
        PacketRecord.Load(asm, Field);
        asm.Alu32(AluOp.Sub, Register.R0, unchecked((int)First));
        asm.Jump32(jumpIfHolds ? JumpOp.Jle : JumpOp.Jgt, Register.R0, Last - First, target);
    }
}

/// <summary>Every test holds (an IPv6 prefix: up to four words).</summary>
internal sealed record AllOf(IReadOnlyList<FieldTest> Tests) : FieldTest
{
    public override void Emit(Assembler asm, bool jumpIfHolds, Label target)
    {
        if (Tests.Count == 0)
        {
            if (jumpIfHolds) asm.Jump(target);
            return;
        }
        if (!jumpIfHolds)
        {
            foreach (var test in Tests) test.Emit(asm, false, target);
            return;
        }
        var fails = asm.NewLabel("all_of_fails");
        foreach (var test in Tests) test.Emit(asm, false, fails);
        asm.Jump(target);
        asm.Mark(fails);
    }
}

/// <summary>
/// A rule's condition on one field: it holds when any of <see cref="Alternatives"/> holds (a list), or, negated,
/// when none does. No alternatives at all is a condition that always holds.
/// </summary>
internal sealed record Condition(IReadOnlyList<FieldTest> Alternatives, bool Negated = false)
{
    public Condition(FieldTest test, bool negated = false) : this([test], negated)
    {
    }

    /// <summary>Falls through when the condition holds, jumps to <paramref name="fail"/> when it does not.</summary>
    public void Emit(Assembler asm, Label fail)
    {
        if (Negated)
        {
            foreach (var alternative in Alternatives) alternative.Emit(asm, true, fail);
            return;
        }
        if (Alternatives.Count == 0) return;
        var holds = asm.NewLabel("any_of_holds");
        for (int i = 0; i < Alternatives.Count - 1; i++) Alternatives[i].Emit(asm, true, holds);
        Alternatives[^1].Emit(asm, false, fail);
        asm.Mark(holds);
    }
}
