namespace Bpfilter.Engine.Ebpf;

/// <summary>eBPF register numbers. R10 is the read-only frame pointer.</summary>
public enum Register : byte { R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 }

/// <summary>Instruction classes (low three bits of the opcode).</summary>
public enum OpClass : byte { Ld = 0x00, Ldx = 0x01, St = 0x02, Stx = 0x03, Alu = 0x04, Jmp = 0x05, Jmp32 = 0x06, Alu64 = 0x07 }

/// <summary>Memory access sizes for loads and stores.</summary>
public enum Size : byte { Word = 0x00, Half = 0x08, Byte = 0x10, DoubleWord = 0x18 }

/// <summary>Arithmetic operations (ALU and ALU64 classes).</summary>
public enum AluOp : byte
{
    Add = 0x00, Sub = 0x10, Mul = 0x20, Div = 0x30, Or = 0x40, And = 0x50, Lsh = 0x60, Rsh = 0x70,
    Neg = 0x80, Mod = 0x90, Xor = 0xa0, Mov = 0xb0, Arsh = 0xc0, End = 0xd0,
}

/// <summary>Jump operations (JMP and JMP32 classes).</summary>
public enum JumpOp : byte
{
    Ja = 0x00, Jeq = 0x10, Jgt = 0x20, Jge = 0x30, Jset = 0x40, Jne = 0x50, Jsgt = 0x60, Jsge = 0x70,
    Call = 0x80, Exit = 0x90, Jlt = 0xa0, Jle = 0xb0, Jslt = 0xc0, Jsle = 0xd0,
}

/// <summary>Operand source bit: immediate (K) or register (X).</summary>
public enum Source : byte { Imm = 0x00, Reg = 0x08 }

/// <summary>Kernel helper function ids used by generated programs (enum bpf_func_id).</summary>
public enum Helper
{
    MapLookupElem = 1,
    MapUpdateElem = 2,
    KtimeGetNs = 5,
    XdpAdjustHead = 44,
    XdpAdjustTail = 65,
    KtimeGetBootNs = 125,
    RingbufOutput = 130,
}

/// <summary>Values of the ld_imm64 src_reg field and the call src_reg field.</summary>
internal static class PseudoSource
{
    public const byte MapFd = 1;
    public const byte KfuncCall = 2;
}

/// <summary>Modes for load and store opcodes.</summary>
internal static class Mode
{
    public const byte Imm = 0x00;
    public const byte Mem = 0x60;
    public const byte Atomic = 0xc0;
}
