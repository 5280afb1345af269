using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Ebpf;
using Xunit;

namespace Bpfilter.Engine.Tests;

/// <summary>The disassembler prints what the kernel's verifier log and 'bpftool prog dump xlated' print (kernel/bpf/disasm.c).</summary>
public sealed class DisassemblerTests
{
    private static Instruction I(byte opcode, byte dst = 0, byte src = 0, short off = 0, int imm = 0) => new(opcode, dst, src, off, imm);

    private static Instruction[] FromHex(string hex)
    {
        var bytes = Convert.FromHexString(hex.Replace(" ", "").Replace("|", ""));
        return Enumerable.Range(0, bytes.Length / Instruction.Size)
            .Select(i => Instruction.ReadFrom(bytes.AsSpan(i * Instruction.Size, Instruction.Size))).ToArray();
    }

    private static string[] Texts(params Instruction[] instructions) =>
        Disassembler.Disassemble(instructions).Select(l => l.Text).ToArray();

    /// <summary>The encodings kernel-uapi.md section 0 proved on Linux 6.18 (out/insn_hex.txt), in the kernel's own syntax.</summary>
    [Theory]
    [InlineData("bf 16 00 00 00 00 00 00", "(bf) r6 = r1")]
    [InlineData("61 67 00 00 00 00 00 00", "(61) r7 = *(u32 *)(r6 +0)")]
    [InlineData("2d 92 18 00 00 00 00 00", "(2d) if r2 > r9 goto pc+24")]
    [InlineData("55 02 16 00 08 00 00 00", "(55) if r2 != 0x8 goto pc+22")]
    [InlineData("56 05 03 00 0a 4d 00 c8", "(56) if w5 != 0xc8004d0a goto pc+3")]
    [InlineData("62 0a fc ff 00 00 00 00", "(62) *(u32 *)(r10 -4) = 0")]
    [InlineData("18 11 00 00 03 00 00 00 | 00 00 00 00 00 00 00 00", "(18) r1 = map[fd:3]")]
    [InlineData("85 00 00 00 01 00 00 00", "(85) call bpf_map_lookup_elem#1")]
    [InlineData("85 20 00 00 6f f9 00 00", "(85) call kernel-function#63855")]
    [InlineData("7b 10 08 00 00 00 00 00", "(7b) *(u64 *)(r0 +8) = r1")]
    [InlineData("db 10 00 00 00 00 00 00", "(db) lock *(u64 *)(r0 +0) += r1")]
    public void Kernel_proven_encodings_print_as_the_kernel_prints_them(string hex, string expected)
    {
        Assert.Equal([expected], Texts(FromHex(hex)));
    }

    [Fact]
    public void Return_two_then_exit_is_two_lines()
    {
        Assert.Equal(["(b7) r0 = 2", "(95) exit"], Texts(FromHex("b7 00 00 00 02 00 00 00 | 95 00 00 00 00 00 00 00")));
    }

    /// <summary>Lines the kernel printed itself, in the level-2 verifier log of the probe's filter (out/p2_level2.log).</summary>
    [Theory]
    [InlineData(0x07, 2, 0, 0, 34, "(07) r2 += 34")]
    [InlineData(0x07, 2, 0, 0, -4, "(07) r2 += -4")]
    [InlineData(0x69, 2, 7, 12, 0, "(69) r2 = *(u16 *)(r7 +12)")]
    [InlineData(0x71, 2, 7, 14, 0, "(71) r2 = *(u8 *)(r7 +14)")]
    [InlineData(0x77, 3, 0, 0, 4, "(77) r3 >>= 4")]
    [InlineData(0x57, 2, 0, 0, 15, "(57) r2 &= 15")]
    [InlineData(0x67, 2, 0, 0, 2, "(67) r2 <<= 2")]
    [InlineData(0xa5, 2, 0, 15, 0x14, "(a5) if r2 < 0x14 goto pc+15")]
    [InlineData(0x45, 3, 0, 11, 0xff1f, "(45) if r3 & 0xff1f goto pc+11")]
    [InlineData(0x0f, 4, 2, 0, 0, "(0f) r4 += r2")]
    [InlineData(0x1f, 2, 7, 0, 0, "(1f) r2 -= r7")]
    [InlineData(0x05, 0, 0, 2, 0, "(05) goto pc+2")]
    [InlineData(0x15, 0, 0, 8, 0, "(15) if r0 == 0x0 goto pc+8")]
    [InlineData(0x79, 1, 0, 8, 0, "(79) r1 = *(u64 *)(r0 +8)")]
    [InlineData(0xb7, 8, 0, 0, 1, "(b7) r8 = 1")]
    public void Lines_of_the_kernels_own_log_match(int opcode, int dst, int src, int off, int imm, string expected)
    {
        Assert.Equal(expected, Disassembler.Format(I((byte)opcode, (byte)dst, (byte)src, (short)off, imm)));
    }

    [Theory]
    // ALU64 with an immediate, every operation
    [InlineData(0x07, 1, 0, 0, 1, "(07) r1 += 1")]
    [InlineData(0x17, 1, 0, 0, 3, "(17) r1 -= 3")]
    [InlineData(0x27, 1, 0, 0, 3, "(27) r1 *= 3")]
    [InlineData(0x37, 1, 0, 0, 3, "(37) r1 /= 3")]
    [InlineData(0x47, 1, 0, 0, 8, "(47) r1 |= 8")]
    [InlineData(0x57, 1, 0, 0, 255, "(57) r1 &= 255")]
    [InlineData(0x67, 1, 0, 0, 4, "(67) r1 <<= 4")]
    [InlineData(0x77, 1, 0, 0, 4, "(77) r1 >>= 4")]
    [InlineData(0x97, 1, 0, 0, 7, "(97) r1 %= 7")]
    [InlineData(0xa7, 1, 0, 0, -1, "(a7) r1 ^= -1")]
    [InlineData(0xb7, 0, 0, 0, 2, "(b7) r0 = 2")]
    [InlineData(0xc7, 1, 0, 0, 3, "(c7) r1 s>>= 3")]
    [InlineData(0x37, 1, 0, 1, 3, "(37) r1 s/= 3")]
    [InlineData(0x97, 1, 0, 1, 3, "(97) r1 s%= 3")]
    // ALU64 with a register
    [InlineData(0x2f, 1, 2, 0, 0, "(2f) r1 *= r2")]
    [InlineData(0xbf, 9, 1, 0, 0, "(bf) r9 = r1")]
    [InlineData(0x3f, 1, 2, 1, 0, "(3f) r1 s/= r2")]
    [InlineData(0x9f, 1, 2, 1, 0, "(9f) r1 s%= r2")]
    [InlineData(0xbf, 1, 2, 8, 0, "(bf) r1 = (s8)r2")]
    [InlineData(0xbf, 1, 2, 32, 0, "(bf) r1 = (s32)r2")]
    [InlineData(0xbf, 0, 0, -1, 0, "(bf) r0 = &(void __percpu *)(r0)")]
    [InlineData(0xbf, 1, 2, 1, 1, "(bf) r1 = addr_space_cast(r2, 0, 1)")]
    // ALU32: w registers
    [InlineData(0x04, 1, 0, 0, 1, "(04) w1 += 1")]
    [InlineData(0x54, 0, 0, 0, 0x00ffffff, "(54) w0 &= 16777215")]
    [InlineData(0x54, 0, 0, 0, -256, "(54) w0 &= -256")]
    [InlineData(0xbc, 0, 1, 0, 0, "(bc) w0 = w1")]
    [InlineData(0xbc, 1, 2, 16, 0, "(bc) w1 = (s16)w2")]
    [InlineData(0xb4, 0, 0, 0, 1, "(b4) w0 = 1")]
    [InlineData(0xac, 1, 2, 0, 0, "(ac) w1 ^= w2")]
    // negation and byte swaps
    [InlineData(0x87, 1, 0, 0, 0, "(87) r1 = -r1")]
    [InlineData(0x84, 1, 0, 0, 0, "(84) w1 = -w1")]
    [InlineData(0xdc, 1, 0, 0, 16, "(dc) r1 = be16 r1")]
    [InlineData(0xdc, 2, 0, 0, 32, "(dc) r2 = be32 r2")]
    [InlineData(0xd4, 1, 0, 0, 64, "(d4) r1 = le64 r1")]
    [InlineData(0xd7, 1, 0, 0, 16, "(d7) r1 = bswap16 r1")]
    // loads
    [InlineData(0x61, 7, 1, 0, 0, "(61) r7 = *(u32 *)(r1 +0)")]
    [InlineData(0x79, 7, 1, -8, 0, "(79) r7 = *(u64 *)(r1 -8)")]
    [InlineData(0x81, 1, 2, 4, 0, "(81) r1 = *(s32 *)(r2 +4)")]
    [InlineData(0x89, 1, 2, 0, 0, "(89) r1 = *(s16 *)(r2 +0)")]
    [InlineData(0x91, 1, 2, -1, 0, "(91) r1 = *(s8 *)(r2 -1)")]
    [InlineData(0x20, 0, 0, 0, 12, "(20) r0 = *(u32 *)skb[12]")]
    [InlineData(0x48, 0, 3, 0, 2, "(48) r0 = *(u16 *)skb[r3 + 2]")]
    // stores of registers and immediates
    [InlineData(0x63, 10, 9, -4, 0, "(63) *(u32 *)(r10 -4) = r9")]
    [InlineData(0x6b, 10, 1, -2, 0, "(6b) *(u16 *)(r10 -2) = r1")]
    [InlineData(0x73, 10, 1, -1, 0, "(73) *(u8 *)(r10 -1) = r1")]
    [InlineData(0x7a, 10, 0, -8, -1, "(7a) *(u64 *)(r10 -8) = -1")]
    [InlineData(0x6a, 10, 0, -2, 80, "(6a) *(u16 *)(r10 -2) = 80")]
    [InlineData(0x72, 10, 0, -1, 7, "(72) *(u8 *)(r10 -1) = 7")]
    [InlineData(0xc2, 0, 0, 0, 0, "(c2) nospec")]
    // atomics
    [InlineData(0xc3, 0, 1, 0, 0x00, "(c3) lock *(u32 *)(r0 +0) += r1")]
    [InlineData(0xdb, 0, 1, 8, 0x50, "(db) lock *(u64 *)(r0 +8) &= r1")]
    [InlineData(0xdb, 0, 1, 0, 0x40, "(db) lock *(u64 *)(r0 +0) |= r1")]
    [InlineData(0xdb, 0, 1, 0, 0xa0, "(db) lock *(u64 *)(r0 +0) ^= r1")]
    [InlineData(0xdb, 0, 1, 0, 0x01, "(db) r1 = atomic64_fetch_add((u64 *)(r0 +0), r1)")]
    [InlineData(0xc3, 0, 1, 0, 0x51, "(c3) r1 = atomic_fetch_and((u32 *)(r0 +0), r1)")]
    [InlineData(0xdb, 0, 1, 8, 0xe1, "(db) r1 = atomic64_xchg((u64 *)(r0 +8), r1)")]
    [InlineData(0xdb, 2, 1, 0, 0xf1, "(db) r0 = atomic64_cmpxchg((u64 *)(r2 +0), r0, r1)")]
    [InlineData(0xdb, 1, 2, 0, 0x100, "(db) r1 = load_acquire((u64 *)(r2 +0))")]
    [InlineData(0xd3, 1, 2, 0, 0x110, "(d3) store_release((u8 *)(r1 +0), r2)")]
    // jumps, 64-bit and 32-bit
    [InlineData(0x05, 0, 0, -3, 0, "(05) goto pc-3")]
    [InlineData(0x1d, 1, 2, 1, 0, "(1d) if r1 == r2 goto pc+1")]
    [InlineData(0x25, 1, 0, 1, 5, "(25) if r1 > 0x5 goto pc+1")]
    [InlineData(0x35, 1, 0, 1, 5, "(35) if r1 >= 0x5 goto pc+1")]
    [InlineData(0x5d, 1, 2, 0, 0, "(5d) if r1 != r2 goto pc+0")]
    [InlineData(0x65, 1, 0, 1, 5, "(65) if r1 s> 0x5 goto pc+1")]
    [InlineData(0x75, 1, 0, 1, 5, "(75) if r1 s>= 0x5 goto pc+1")]
    [InlineData(0xb5, 1, 0, 1, 5, "(b5) if r1 <= 0x5 goto pc+1")]
    [InlineData(0xc5, 1, 0, 1, -1, "(c5) if r1 s< 0xffffffff goto pc+1")]
    [InlineData(0xdd, 1, 2, -7, 0, "(dd) if r1 s<= r2 goto pc-7")]
    [InlineData(0x16, 3, 0, 4, 6, "(16) if w3 == 0x6 goto pc+4")]
    [InlineData(0x5e, 1, 2, 1, 0, "(5e) if w1 != w2 goto pc+1")]
    [InlineData(0xae, 1, 2, 1, 0, "(ae) if w1 < w2 goto pc+1")]
    [InlineData(0x06, 0, 0, 0, 100, "(06) gotol pc+100")]
    [InlineData(0xe5, 0, 0, 3, 0, "(e5) may_goto pc+3")]
    // calls
    [InlineData(0x85, 0, 0, 0, 5, "(85) call bpf_ktime_get_ns#5")]
    [InlineData(0x85, 0, 0, 0, 12, "(85) call bpf_tail_call#12")]
    [InlineData(0x85, 0, 0, 0, 131, "(85) call bpf_ringbuf_reserve#131")]
    [InlineData(0x85, 0, 0, 0, 999, "(85) call unknown#999")]
    [InlineData(0x85, 0, 1, 0, 5, "(85) call pc+5")]
    [InlineData(0x95, 0, 0, 0, 0, "(95) exit")]
    public void Each_instruction_kind_has_the_kernels_text(int opcode, int dst, int src, int off, int imm, string expected)
    {
        Assert.Equal(expected, Disassembler.Format(I((byte)opcode, (byte)dst, (byte)src, (short)off, imm)));
    }

    [Theory]
    [InlineData(0x00)] // a lone second slot of ld_imm64
    [InlineData(0x38)] // BPF_LD | BPF_ABS | BPF_DW
    [InlineData(0x99)] // sign-extending load of a double word
    [InlineData(0x0d)] // goto with a register
    [InlineData(0x8d)] // call through a register
    [InlineData(0x9d)] // exit with a register
    [InlineData(0x86)] // JMP32 has no call
    [InlineData(0x96)] // nor exit
    [InlineData(0xf5)] // jump op 0xf0
    [InlineData(0xe4)] // ALU op 0xe0
    [InlineData(0xf7)] // ALU op 0xf0
    [InlineData(0xdf)] // ALU64 byte swap from a register
    [InlineData(0x8c)] // negation of a register source
    [InlineData(0xa3)] // STX with a mode the kernel does not define
    public void Opcodes_the_kernel_does_not_define_are_unknown(int opcode)
    {
        Assert.Equal($"({opcode:x2}) unknown opcode", Disassembler.Format(I((byte)opcode, 1, 2, 3, 4)));
    }

    [Fact]
    public void Every_opcode_makes_one_line_and_nothing_throws()
    {
        foreach (var off in new short[] { 0, 1, -1, 8, 16, 32 })
        foreach (var imm in new[] { 0, 1, 16, 32, 64, 0x100, 0x110, 0xe1, 0xf1, -1, int.MinValue })
        foreach (var regs in new byte[] { 0x00, 0x21, 0xff })
        {
            var instructions = Enumerable.Range(0, 256)
                .Select(op => new Instruction((byte)op, (byte)(regs & 0xf), (byte)(regs >> 4), off, imm)).ToArray();
            foreach (var line in Disassembler.Disassemble(instructions))
            {
                Assert.StartsWith($"({instructions[line.Index].Opcode:x2}) ", line.Text);
                Assert.DoesNotContain('\n', line.Text);
            }
            var last = Disassembler.Disassemble([new Instruction(0x18, 1, 0, 0, 0)]);
            Assert.Single(last);
        }
    }

    [Fact]
    public void A_64_bit_immediate_load_is_one_line_for_two_slots()
    {
        var lines = Disassembler.Disassemble([I(0xb7, 0, 0, 0, 0), I(0x18, 1, 0, 0, 0x55667788), I(0, 0, 0, 0, 0x11223344), I(0x95)]);
        Assert.Equal([0, 1, 3], lines.Select(l => l.Index));
        Assert.Equal([1, 2, 1], lines.Select(l => l.Slots));
        Assert.Equal("(18) r1 = 0x1122334455667788", lines[1].Text);
        Assert.Equal("   3: (95) exit", lines[2].Line);
    }

    [Fact]
    public void Map_loads_read_as_fd_id_value_or_the_maps_name()
    {
        Instruction[] load = [I(0x18, 1, 1, 0, 12), I(0)];
        Instruction[] value = [I(0x18, 2, 2, 0, 4), I(0, 0, 0, 0, 16)];
        Assert.Equal("(18) r1 = map[fd:12]", Disassembler.Format(load[0], load[1]));
        Assert.Equal("(18) r2 = map[fd:4][0]+16", Disassembler.Format(value[0], value[1]));
        var ids = new DisassemblyOptions { MapImmediate = MapImmediate.Id };
        Assert.Equal("(18) r1 = map[id:12]", Disassembler.Format(load[0], load[1], ids));
        Assert.Equal("(18) r2 = map[id:4][0]+16", Disassembler.Format(value[0], value[1], ids));
        var named = new DisassemblyOptions { MapNames = new Dictionary<int, string> { [0] = "c_INPUT" } };
        Assert.Equal("(18) r1 = map[c_INPUT]", Disassembler.Disassemble(load, named)[0].Text);
    }

    [Fact]
    public void A_call_resolver_names_calls_first()
    {
        var options = new DisassemblyOptions { CallName = insn => insn.Immediate == 277952 ? "bpf_map_lookup_elem" : null };
        Assert.Equal("(85) call bpf_map_lookup_elem#277952", Disassembler.Format(I(0x85, imm: 277952), options: options));
        Assert.Equal("(85) call bpf_ktime_get_ns#5", Disassembler.Format(I(0x85, imm: 5), options: options));
    }

    [Theory]
    [InlineData(0, "   0: (95) exit")]
    [InlineData(12, "  12: (95) exit")]
    [InlineData(999, " 999: (95) exit")]
    [InlineData(1000, " 1000: (95) exit")]
    public void Lines_carry_the_index_as_bpftool_prints_it(int index, string expected)
    {
        Assert.Equal(expected, Disassembler.FormatLine(index, "(95) exit"));
    }

    [Fact]
    public void Helpers_have_the_kernels_names()
    {
        Assert.Equal("bpf_map_lookup_elem", Disassembler.HelperName((int)Helper.MapLookupElem));
        Assert.Equal("bpf_map_update_elem", Disassembler.HelperName((int)Helper.MapUpdateElem));
        Assert.Equal("bpf_ktime_get_ns", Disassembler.HelperName((int)Helper.KtimeGetNs));
        foreach (var helper in Enum.GetValues<Helper>()) Assert.NotNull(Disassembler.HelperName((int)helper));
        Assert.Equal("bpf_get_prandom_u32", Disassembler.HelperName(7));
        Assert.Equal("bpf_get_smp_processor_id", Disassembler.HelperName(8));
        Assert.Equal("bpf_redirect", Disassembler.HelperName(23));
        Assert.Equal("bpf_skb_load_bytes", Disassembler.HelperName(26));
        Assert.Equal("bpf_skb_pull_data", Disassembler.HelperName(39));
        Assert.Equal("bpf_probe_read_kernel", Disassembler.HelperName(113));
        Assert.Equal("bpf_ringbuf_output", Disassembler.HelperName(130));
        Assert.Equal("bpf_ringbuf_submit", Disassembler.HelperName(132));
        Assert.Equal("bpf_map_lookup_percpu_elem", Disassembler.HelperName(195));
        Assert.Equal("bpf_cgrp_storage_delete", Disassembler.HelperName(211));
        Assert.Null(Disassembler.HelperName(212));
        Assert.Null(Disassembler.HelperName(-1));
    }

    [Fact]
    public void The_demo_chain_disassembles_with_no_unknown_line()
    {
        var compiled = ChainCompiler.Compile(Samples.Demo.Chains[0]);
        var lines = Disassembler.Disassemble(compiled.Program);
        Assert.Equal(compiled.Program.Instructions.Count, lines.Sum(l => l.Slots));
        Assert.All(lines, l => Assert.DoesNotContain("unknown", l.Text));
        Assert.Equal("(95) exit", lines[^1].Text);
        Assert.Contains(lines, l => l.Text == $"(18) r1 = map[{compiled.Counters.Name}]");
        Assert.Contains(lines, l => l.Text == "(85) call bpf_map_lookup_elem#1");
        // the one /32 compare of the demo: source 10.200.0.66 in host order (0x0ac80042), XORed in 32 bits
        Assert.Contains(lines, l => l.Text == "(a4) w0 ^= 180879426");
        Assert.Contains(lines, l => l.Text.StartsWith("(56) if w0 != 0x0 goto pc+", StringComparison.Ordinal));
    }

    [Fact]
    public void The_demo_listing_has_a_region_per_rule_in_order()
    {
        var ruleset = Samples.Demo;
        var chain = ruleset.Chains[0];
        var program = ChainCompiler.Compile(chain).Program;
        var lines = ProgramListing.Of(ruleset.Name, chain.Name, program).ToList();
        var regions = lines.Select(l => l.Region).Distinct().ToList();
        Assert.Equal("prologue", regions[0]);
        Assert.Equal(["rule 1 drop-blocked-host", "rule 2 no-telnet", "rule 3 allow-dns"], regions.Where(r => r.StartsWith("rule ", StringComparison.Ordinal)));
        Assert.Contains("policy", regions);
        Assert.DoesNotContain(ProgramListing.NoRegion, regions);
        Assert.All(lines, l => Assert.Equal(("demo", "INPUT"), (l.Deployment, l.Chain)));
        Assert.Equal(Disassembler.Disassemble(program).Select(l => l.Line), lines.Select(l => l.Text));
        Assert.EndsWith(": (95) exit", lines[^1].Text);
    }
}
