namespace Bpfilter.Engine.Ebpf;

/// <summary>A jump target. Created by <see cref="Assembler.NewLabel"/>, placed once with <see cref="Assembler.Mark"/>.</summary>
public sealed class Label
{
    internal Label(string name) => Name = name;
    public string Name { get; }
    internal int Position { get; set; } = -1;
    public override string ToString() => Name;
}

/// <summary>
/// Builds a program instruction by instruction. Jumps name labels, never offsets; every label is resolved
/// in one fix-up pass in <see cref="Assemble"/> (offset = target − (pc + 1), counting both ld_imm64 slots).
/// </summary>
public sealed class Assembler
{
    private readonly List<Instruction> _instructions = new();
    private readonly List<(int Index, Label Target)> _jumps = new();
    private readonly List<MapReference> _mapReferences = new();
    private readonly List<KfuncReference> _kfuncReferences = new();
    private readonly List<InstructionRegion> _regions = new();
    private readonly List<Label> _labels = new();
    private (int Start, string Label)? _openRegion;

    public int Count => _instructions.Count;

    public Label NewLabel(string name)
    {
        var label = new Label(name);
        _labels.Add(label);
        return label;
    }

    public void Mark(Label label)
    {
        if (label.Position >= 0) throw new InvalidOperationException($"label '{label.Name}' is placed twice");
        label.Position = _instructions.Count;
    }

    /// <summary>Starts a region that lasts until the next call of BeginRegion or Assemble, for listings.</summary>
    public void BeginRegion(string label)
    {
        CloseRegion();
        _openRegion = (_instructions.Count, label);
    }

    // --- ALU -------------------------------------------------------------------------------------------

    public void Mov(Register dst, long imm) => Alu64(AluOp.Mov, dst, imm);
    public void Mov(Register dst, Register src) => Alu64(AluOp.Mov, dst, src);
    public void Mov32(Register dst, Register src) => Alu32(AluOp.Mov, dst, src);

    public void Alu64(AluOp op, Register dst, long imm) => Emit(OpClass.Alu64, (byte)op, Source.Imm, dst, 0, 0, CheckImm(imm));
    public void Alu64(AluOp op, Register dst, Register src) => Emit(OpClass.Alu64, (byte)op, Source.Reg, dst, src, 0, 0);
    public void Alu32(AluOp op, Register dst, long imm) => Emit(OpClass.Alu, (byte)op, Source.Imm, dst, 0, 0, CheckImm(imm));
    public void Alu32(AluOp op, Register dst, Register src) => Emit(OpClass.Alu, (byte)op, Source.Reg, dst, src, 0, 0);

    /// <summary>dst = the low <paramref name="bits"/> (16, 32 or 64) of dst read as big-endian (BPF_END | BPF_TO_BE): wire order to host order.</summary>
    public void FromBigEndian(Register dst, int bits) => Emit(OpClass.Alu, (byte)AluOp.End, Source.Reg, dst, 0, 0, bits);

    // --- memory ----------------------------------------------------------------------------------------

    /// <summary>dst = *(size *)(src + offset)</summary>
    public void Load(Size size, Register dst, Register src, short offset) =>
        Add(new Instruction((byte)((byte)OpClass.Ldx | (byte)size | Mode.Mem), (byte)dst, (byte)src, offset, 0));

    /// <summary>*(size *)(dst + offset) = src</summary>
    public void Store(Size size, Register dst, short offset, Register src) =>
        Add(new Instruction((byte)((byte)OpClass.Stx | (byte)size | Mode.Mem), (byte)dst, (byte)src, offset, 0));

    /// <summary>*(size *)(dst + offset) = imm</summary>
    public void Store(Size size, Register dst, short offset, int imm) =>
        Add(new Instruction((byte)((byte)OpClass.St | (byte)size | Mode.Mem), (byte)dst, 0, offset, imm));

    /// <summary>lock *(size *)(dst + offset) += src (BPF_ATOMIC | BPF_ADD), for maps shared between CPUs.</summary>
    public void AtomicAdd(Size size, Register dst, short offset, Register src) =>
        Add(new Instruction((byte)((byte)OpClass.Stx | (byte)size | Mode.Atomic), (byte)dst, (byte)src, offset, 0));

    /// <summary>r0 = atomic compare-and-exchange of *(size *)(dst + offset): if it equals r0, it becomes src; r0 gets the old value (BPF_CMPXCHG).</summary>
    public void AtomicCompareExchange(Size size, Register dst, short offset, Register src) =>
        Add(new Instruction((byte)((byte)OpClass.Stx | (byte)size | Mode.Atomic), (byte)dst, (byte)src, offset, 0xf1));

    /// <summary>dst = the file descriptor of <paramref name="map"/> (ld_imm64 with BPF_PSEUDO_MAP_FD; two slots).</summary>
    public void LoadMap(Register dst, MapSpec map)
    {
        _mapReferences.Add(new MapReference(_instructions.Count, map));
        Add(new Instruction(0x18, (byte)dst, PseudoSource.MapFd, 0, 0));
        Add(new Instruction(0, 0, 0, 0, 0));
    }

    /// <summary>dst = a full 64-bit constant (ld_imm64; two slots).</summary>
    public void LoadImm64(Register dst, ulong value)
    {
        Add(new Instruction(0x18, (byte)dst, 0, 0, unchecked((int)(uint)value)));
        Add(new Instruction(0, 0, 0, 0, unchecked((int)(uint)(value >> 32))));
    }

    // --- control flow ----------------------------------------------------------------------------------

    public void Jump(Label target) => EmitJump(OpClass.Jmp, JumpOp.Ja, Source.Imm, 0, 0, 0, target);

    /// <summary>64-bit compare with an immediate. The kernel sign-extends imm: for u32 fields use <see cref="Jump32(JumpOp, Register, uint, Label)"/>.</summary>
    public void Jump(JumpOp op, Register dst, int imm, Label target) => EmitJump(OpClass.Jmp, op, Source.Imm, dst, 0, imm, target);
    public void Jump(JumpOp op, Register dst, Register src, Label target) => EmitJump(OpClass.Jmp, op, Source.Reg, dst, src, 0, target);

    /// <summary>32-bit compare of the low halves: exact for u32 packet fields whatever their top bit.</summary>
    public void Jump32(JumpOp op, Register dst, uint imm, Label target) =>
        EmitJump(OpClass.Jmp32, op, Source.Imm, dst, 0, unchecked((int)imm), target);

    public void Call(Helper helper) => Add(new Instruction((byte)((byte)OpClass.Jmp | (byte)JumpOp.Call), 0, 0, 0, (int)helper));

    /// <summary>Calls a kernel function by name (BPF_PSEUDO_KFUNC_CALL); the loader puts in its BTF id.</summary>
    public void CallKfunc(string name)
    {
        _kfuncReferences.Add(new KfuncReference(_instructions.Count, name));
        Add(new Instruction((byte)((byte)OpClass.Jmp | (byte)JumpOp.Call), 0, PseudoSource.KfuncCall, 0, 0));
    }

    public void Exit() => Add(new Instruction((byte)((byte)OpClass.Jmp | (byte)JumpOp.Exit), 0, 0, 0, 0));

    // --- result ----------------------------------------------------------------------------------------

    /// <summary>
    /// Resolves every label and drops the instructions no path reaches (the verifier refuses unreachable code, and
    /// a compiler that leaves it to this pass can emit each rule without knowing whether an earlier one decides all).
    /// </summary>
    public EbpfProgram Assemble(string name, ProgramType type, uint expectedAttachType = 0)
    {
        CloseRegion();
        foreach (var (_, target) in _jumps)
        {
            if (target.Position < 0) throw new InvalidOperationException($"label '{target.Name}' is never placed");
        }
        var (kept, newIndex) = Reachable();
        var resolved = kept.Select(i => _instructions[i]).ToArray();
        foreach (var (index, target) in _jumps)
        {
            if (newIndex[index] < 0) continue;
            int from = newIndex[index];
            int offset = NewPosition(newIndex, target.Position) - (from + 1);
            if (offset is >= short.MinValue and <= short.MaxValue)
                resolved[from] = resolved[from] with { Offset = (short)offset };
            else if (resolved[from].Opcode == (byte)((byte)OpClass.Jmp | (byte)JumpOp.Ja))
                resolved[from] = resolved[from] with { Opcode = (byte)((byte)OpClass.Jmp32 | (byte)JumpOp.Ja), Immediate = offset }; // gotol: a 32-bit offset (Linux 6.4+)
            else
                throw new InvalidOperationException($"conditional jump from {from} to '{target.Name}' spans {offset} instructions, more than its 16-bit offset reaches");
        }
        var maps = _mapReferences.Where(r => newIndex[r.InstructionIndex] >= 0).Select(r => r with { InstructionIndex = newIndex[r.InstructionIndex] }).ToArray();
        var kfuncs = _kfuncReferences.Where(r => newIndex[r.InstructionIndex] >= 0).Select(r => r with { InstructionIndex = newIndex[r.InstructionIndex] }).ToArray();
        var regions = _regions.Select(r => new InstructionRegion(NewPosition(newIndex, r.Start), NewPosition(newIndex, r.End), r.Label))
            .Where(r => r.End > r.Start).ToArray();
        return new EbpfProgram(name, type, expectedAttachType, resolved, maps, kfuncs, regions);
    }

    /// <summary>The instructions reachable from the first, in order, and each old index's new one (−1 when dropped).</summary>
    private (List<int> Kept, int[] NewIndex) Reachable()
    {
        int count = _instructions.Count;
        var targets = new Dictionary<int, int>();
        foreach (var (index, target) in _jumps) targets[index] = target.Position;
        var reached = new bool[count];
        var work = new Stack<int>();
        if (count > 0) work.Push(0);
        while (work.Count > 0)
        {
            int pc = work.Pop();
            if (pc >= count || reached[pc]) continue;
            reached[pc] = true;
            var insn = _instructions[pc];
            if (insn.IsLoadImm64)
            {
                reached[pc + 1] = true;
                work.Push(pc + 2);
                continue;
            }
            bool isJumpClass = insn.Class is OpClass.Jmp or OpClass.Jmp32;
            var op = (JumpOp)(insn.Opcode & 0xf0);
            if (isJumpClass && op == JumpOp.Exit) continue;
            if (targets.TryGetValue(pc, out var target)) work.Push(target);
            if (!(isJumpClass && op == JumpOp.Ja)) work.Push(pc + 1);
        }
        var kept = new List<int>(count);
        var newIndex = new int[count];
        for (int i = 0; i < count; i++)
        {
            newIndex[i] = reached[i] ? kept.Count : -1;
            if (reached[i]) kept.Add(i);
        }
        return (kept, newIndex);
    }

    /// <summary>Where old position <paramref name="position"/> lands: itself if kept, else the next kept instruction.</summary>
    private static int NewPosition(int[] newIndex, int position)
    {
        for (int i = position; i < newIndex.Length; i++)
        {
            if (newIndex[i] >= 0) return newIndex[i];
        }
        return newIndex.Count(n => n >= 0);
    }

    private void CloseRegion()
    {
        if (_openRegion is { } open && _instructions.Count > open.Start)
            _regions.Add(new InstructionRegion(open.Start, _instructions.Count, open.Label));
        _openRegion = null;
    }

    private void Emit(OpClass cls, byte op, Source source, Register dst, Register src, short offset, int imm) =>
        Add(new Instruction((byte)((byte)cls | op | (byte)source), (byte)dst, (byte)src, offset, imm));

    private void EmitJump(OpClass cls, JumpOp op, Source source, Register dst, Register src, int imm, Label target)
    {
        _jumps.Add((_instructions.Count, target));
        Emit(cls, (byte)op, source, dst, src, 0, imm);
    }

    private void Add(Instruction instruction) => _instructions.Add(instruction);

    private static int CheckImm(long imm) =>
        imm is >= int.MinValue and <= int.MaxValue ? (int)imm
        : throw new ArgumentOutOfRangeException(nameof(imm), imm, "a 32-bit immediate cannot hold this value; use LoadImm64");
}
