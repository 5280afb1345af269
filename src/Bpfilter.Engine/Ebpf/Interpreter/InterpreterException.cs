namespace Bpfilter.Engine.Ebpf.Interpreter;

/// <summary>
/// The interpreter refused to go on: a memory access out of bounds, an uninitialised register, an unknown opcode,
/// a helper it does not know, a loop past the step limit... The message names the instruction (its index and its
/// text, in the verifier's syntax) and what went wrong. The interpreter never crashes on a bad program: it raises this.
/// </summary>
public sealed class InterpreterException : BpfilterException
{
    public InterpreterException(int instructionIndex, string? instructionText, string reason)
        : base("InterpreterFault", FailureCategory.InvalidOperation, Format(instructionIndex, instructionText, reason))
    {
        InstructionIndex = instructionIndex;
        InstructionText = instructionText;
        Reason = reason;
    }

    /// <summary>The index of the faulting instruction in the program (ld_imm64 counts two), or −1 before the first.</summary>
    public int InstructionIndex { get; }

    /// <summary>The faulting instruction in the verifier's syntax, for example "r3 = *(u16 *)(r7 +40)".</summary>
    public string? InstructionText { get; }

    /// <summary>What went wrong, without the instruction.</summary>
    public string Reason { get; }

    private static string Format(int index, string? text, string reason) =>
        index < 0 ? reason : $"instruction {index}" + (text is null ? "" : $" ({text})") + $": {reason}";
}
