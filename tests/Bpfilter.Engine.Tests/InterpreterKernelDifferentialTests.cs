using System.Diagnostics;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Ebpf.Interpreter;
using Bpfilter.Engine.Kernel;
using Xunit;
using Xunit.Abstractions;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// Instruction semantics against the kernel: random programs of every ALU and ALU64 operation (immediate and register
/// forms, signed division, movsx, byte swaps, neg), JMP and JMP32 compares, stack stores and (sign-extending) loads,
/// and atomics on a map value, run by the interpreter and by the kernel (verifier, JIT, BPF_PROG_TEST_RUN). Both
/// store r0–r8 into an array map at the end; the maps must hold the same bytes.
/// </summary>
[Collection("kernel")]
public sealed class InterpreterKernelDifferentialTests(ITestOutputHelper output)
{
    private const int ResultRegisters = 9, ScratchSlots = 4, ScratchOffset = ResultRegisters * 8;
    private static readonly MapSpec Results = new("bpft_diff", MapType.Array, 4, ScratchOffset + ScratchSlots * 8, 1);

    private static Instruction I(int opcode, int dst = 0, int src = 0, int off = 0, int imm = 0) => new((byte)opcode, (byte)dst, (byte)src, (short)off, imm);

    private sealed class ProgramGenerator(Random random)
    {
        private readonly List<Instruction> _code = new();
        private int _jumps;

        private int Reg() => random.Next(ResultRegisters); // r0–r8; r9 holds the map value, r10 the frame

        private long Value() => random.Next(8) switch
        {
            0 => 0,
            1 => -1,
            2 => long.MinValue,
            3 => int.MinValue,
            4 => random.Next(-300, 300),
            5 => (long)(uint)random.Next() << 1 | 1,
            _ => random.NextInt64(long.MinValue, long.MaxValue),
        };

        private int Imm() => random.Next(4) switch { 0 => random.Next(-16, 16), 1 => int.MinValue, 2 => -1, _ => random.Next(int.MinValue, int.MaxValue) };

        public EbpfProgram Build(int operations)
        {
            _code.Clear();
            _jumps = 0;
            _code.Add(I(0x62, 10, off: -4, imm: 0));               // *(u32 *)(fp-4) = 0
            _code.Add(I(0x18, 1, 1)); _code.Add(I(0));             // r1 = map
            _code.Add(I(0xbf, 2, 10)); _code.Add(I(0x07, 2, imm: -4));
            _code.Add(I(0x85, imm: 1));                            // r0 = lookup
            _code.Add(I(0x55, 0, off: 2, imm: 0));
            _code.Add(I(0xb7, 0)); _code.Add(I(0x95));
            _code.Add(I(0xbf, 9, 0));                              // r9 = value
            for (int r = 0; r < ResultRegisters; r++)
            {
                ulong v = (ulong)Value();
                _code.Add(I(0x18, r, imm: (int)(uint)v)); _code.Add(I(0, imm: (int)(uint)(v >> 32)));
            }
            for (int i = 0; i < operations; i++) Operation();
            for (int r = 0; r < ResultRegisters; r++) _code.Add(I(0x7b, 9, r, r * 8)); // *(u64 *)(r9 + 8r) = rR
            _code.Add(I(0xb7, 0, imm: 2));
            _code.Add(I(0x95));
            return new EbpfProgram("bpft_diff", ProgramType.Xdp, 0, _code.ToArray(), [new MapReference(1, Results)], [], []);
        }

        private void Operation()
        {
            switch (random.Next(100))
            {
                case < 45: Binary(); break;
                case < 50: _code.Add(I(random.Next(2) == 0 ? 0x87 : 0x84, Reg())); break; // neg
                case < 57: MovSx(); break;
                case < 64: ByteSwap(); break;
                case < 76 when _jumps < 10: Branch(); break;
                case < 88: StackRoundTrip(); break;
                default: AtomicOperation(); break;
            }
        }

        private void Binary()
        {
            int[] ops = [0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x90, 0xa0, 0xb0, 0xc0];
            int op = ops[random.Next(ops.Length)];
            bool is64 = random.Next(2) == 0;
            int cls = is64 ? 0x07 : 0x04;
            int off = op is 0x30 or 0x90 && random.Next(3) == 0 ? 1 : 0; // sdiv / smod
            if (random.Next(2) == 0)
            {
                _code.Add(I(cls | op | 0x08, Reg(), Reg(), off));
                return;
            }
            int imm = op switch
            {
                0x60 or 0x70 or 0xc0 => random.Next(is64 ? 64 : 32),
                0x30 or 0x90 => Imm() is var k && k != 0 ? k : 3,
                _ => Imm(),
            };
            _code.Add(I(cls | op, Reg(), 0, off, imm));
        }

        private void MovSx()
        {
            bool is64 = random.Next(2) == 0;
            int[] widths = is64 ? [8, 16, 32] : [8, 16];
            _code.Add(I(is64 ? 0xbf : 0xbc, Reg(), Reg(), widths[random.Next(widths.Length)]));
        }

        private void ByteSwap()
        {
            int[] widths = [16, 32, 64];
            int opcode = random.Next(3) switch { 0 => 0xd4, 1 => 0xdc, _ => 0xd7 }; // le, be, bswap
            _code.Add(I(opcode, Reg(), imm: widths[random.Next(3)]));
        }

        private void Branch()
        {
            _jumps++;
            int[] ops = [0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0];
            int cls = random.Next(2) == 0 ? 0x05 : 0x06;
            int op = ops[random.Next(ops.Length)];
            if (random.Next(2) == 0) _code.Add(I(cls | op | 0x08, Reg(), Reg(), off: 1));
            else _code.Add(I(cls | op, Reg(), 0, off: 1, imm: Imm()));
            Binary();
        }

        private void StackRoundTrip()
        {
            int slot = -8 * random.Next(1, 9);
            _code.Add(I(0x7b, 10, Reg(), slot));                            // the whole slot first: no uninitialised bytes
            int[] sizes = [0x00, 0x08, 0x10, 0x18];
            int[] bytes = [4, 2, 1, 8];
            int s = random.Next(4);
            int at = slot + random.Next(8 / bytes[s]) * bytes[s];
            if (random.Next(2) == 0) _code.Add(I(0x63 | sizes[s], 10, Reg(), at)); // stx
            else _code.Add(I(0x62 | sizes[s], 10, 0, at, Imm()));                // st imm
            int l = random.Next(4);
            int from = slot + random.Next(8 / bytes[l]) * bytes[l];
            bool signExtend = l != 3 && random.Next(2) == 0;
            _code.Add(I((signExtend ? 0x81 : 0x61) | sizes[l], Reg(), 10, from));
        }

        private void AtomicOperation()
        {
            bool dw = random.Next(2) == 0;
            int offset = ScratchOffset + 8 * random.Next(ScratchSlots) + (dw ? 0 : 4 * random.Next(2));
            int[] ops = [0x00, 0x40, 0x50, 0xa0, 0x01, 0x41, 0x51, 0xa1, 0xe1, 0xf1];
            int op = ops[random.Next(ops.Length)];
            int src = op == 0xf1 ? random.Next(1, ResultRegisters) : Reg();
            _code.Add(I(dw ? 0xdb : 0xc3, 9, src, offset, op));
        }
    }

    [Fact]
    public void Random_instruction_mixes_leave_the_same_registers_and_memory_as_the_kernel()
    {
        var random = new Random(2024);
        var generator = new ProgramGenerator(random);
        var clock = Stopwatch.StartNew();
        int programs = 600, instructions = 0;
        var frame = new byte[60];
        var disagreements = new List<string>();
        for (int p = 0; p < programs; p++)
        {
            var program = generator.Build(operations: 80);
            instructions += program.Instructions.Count;

            var memory = InMemoryMap.Create(Results);
            var interpreted = new EbpfInterpreter(program, new Dictionary<MapSpec, InMemoryMap> { [Results] = memory }).Run(frame);
            var expected = new byte[Results.ValueSize];
            memory.Lookup(new byte[4], expected);

            using var map = BpfMap.Create(Results);
            using var loaded = LoadedProgram.Load(program, new Dictionary<MapSpec, BpfMap> { [Results] = map });
            uint retval = loaded.TestRun(frame);
            var actual = new byte[Results.ValueSize];
            map.Lookup(new byte[4], actual);

            if (retval != interpreted.ReturnCode || !expected.AsSpan().SequenceEqual(actual))
            {
                var diffs = Enumerable.Range(0, (int)Results.ValueSize / 8)
                    .Where(i => BitConverter.ToUInt64(expected, i * 8) != BitConverter.ToUInt64(actual, i * 8))
                    .Select(i => $"{(i < ResultRegisters ? $"r{i}" : $"scratch {i - ResultRegisters}")}: interpreter 0x{BitConverter.ToUInt64(expected, i * 8):x} kernel 0x{BitConverter.ToUInt64(actual, i * 8):x}");
                disagreements.Add($"program {p}: {string.Join("; ", diffs)}\n{Disassembler.ToText(Disassembler.Disassemble(program))}");
            }
        }
        output.WriteLine($"{programs} programs, {instructions} instructions, {disagreements.Count} disagreements, {clock.ElapsedMilliseconds} ms");
        Assert.True(disagreements.Count == 0, string.Join("\n\n", disagreements.Take(2)));
    }
}
