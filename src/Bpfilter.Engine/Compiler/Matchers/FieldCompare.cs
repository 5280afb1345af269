using Bpfilter.Engine.Ebpf;

namespace Bpfilter.Engine.Compiler.Matchers;

/// <summary>
/// Equality tests that leave the field register unrefined. A plain "if r3 != 17" teaches the verifier that r3 is
/// 17 on the path that falls through, so every rule that fails after it reaches the next rule with a different
/// state, states stop being pruned, and a chain of a thousand rules exceeds the verifier's million instructions.
/// XOR into the scratch register breaks the link between the two registers (unlike mov or add, which the
/// verifier tracks), so only r0 is refined, and r0 is dead at every rule's start.
/// </summary>
internal static class FieldCompare
{
    public static void JumpIfNotEqual(Assembler asm, Register field, uint value, Label noMatch)
    {
        asm.Mov32(Registers.Scratch, field);
        asm.Alu32(AluOp.Xor, Registers.Scratch, unchecked((int)value));
        asm.Jump32(JumpOp.Jne, Registers.Scratch, 0, noMatch);
    }
}
