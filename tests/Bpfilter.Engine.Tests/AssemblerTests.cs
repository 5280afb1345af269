using Bpfilter.Engine.Ebpf;
using Xunit;

namespace Bpfilter.Engine.Tests;

/// <summary>Encodings are the bytes the kernel accepted (project kernel notes), written as the verifier prints them.</summary>
public sealed class AssemblerTests
{
    private static string Hex(byte[] bytes) => Convert.ToHexString(bytes).ToLowerInvariant();

    /// <summary>The bytes of the first instruction (two slots for ld_imm64) of what <paramref name="emit"/> assembles.</summary>
    private static string FirstInstruction(Action<Assembler> emit)
    {
        var asm = new Assembler();
        emit(asm);
        var program = asm.Assemble("t", ProgramType.Xdp);
        var slots = program.Instructions[0].IsLoadImm64 ? 2 : 1;
        return Hex(Instruction.Encode(program.Instructions.Take(slots).ToArray()));
    }

    /// <summary>A jump emitted by <paramref name="jump"/>, with its label placed after <paramref name="skip"/> fillers.</summary>
    private static string ForwardJump(int skip, Action<Assembler, Label> jump) => FirstInstruction(asm =>
    {
        var target = asm.NewLabel("target");
        jump(asm, target);
        for (int i = 0; i < skip; i++) asm.Mov(Register.R0, 1);
        asm.Mark(target);
        asm.Exit();
    });

    [Fact]
    public void Mov_register() =>
        Assert.Equal("bf16000000000000", FirstInstruction(a => a.Mov(Register.R6, Register.R1)));

    [Fact]
    public void Load_word() =>
        Assert.Equal("6167000000000000", FirstInstruction(a => a.Load(Size.Word, Register.R7, Register.R6, 0)));

    [Fact]
    public void Jump_if_greater_than_register() =>
        Assert.Equal("2d92180000000000", ForwardJump(24, (a, l) => a.Jump(JumpOp.Jgt, Register.R2, Register.R9, l)));

    [Fact]
    public void Jump_if_not_equal_immediate() =>
        Assert.Equal("5502160008000000", ForwardJump(22, (a, l) => a.Jump(JumpOp.Jne, Register.R2, 0x8, l)));

    [Fact]
    public void Jump32_if_not_equal_immediate_with_top_bit_set() =>
        Assert.Equal("560503000a4d00c8", ForwardJump(3, (a, l) => a.Jump32(JumpOp.Jne, Register.R5, 0xc8004d0a, l)));

    [Fact]
    public void Store_immediate_below_frame_pointer() =>
        Assert.Equal("620afcff00000000", FirstInstruction(a => a.Store(Size.Word, Register.R10, -4, 0)));

    [Fact]
    public void Load_map_fd_takes_two_slots_and_gets_the_fd_patched_in()
    {
        var map = new MapSpec("c_test", MapType.PerCpuArray, 4, 16, 3);
        var asm = new Assembler();
        asm.LoadMap(Register.R1, map);
        var program = asm.Assemble("t", ProgramType.Xdp);

        Assert.Equal("1811000003000000" + "0000000000000000", Hex(program.Encode(new Dictionary<MapSpec, int> { [map] = 3 })));
        Assert.Equal(new MapReference(0, map), Assert.Single(program.MapReferences));
        Assert.Equal([map], program.Maps);
    }

    [Fact]
    public void Load_imm64_splits_the_value_across_both_slots() =>
        Assert.Equal("1803000078563412" + "00000000f0debc9a", FirstInstruction(a => a.LoadImm64(Register.R3, 0x9abcdef012345678)));

    [Fact]
    public void Call_map_lookup_elem() =>
        Assert.Equal("8500000001000000", FirstInstruction(a => a.Call(Helper.MapLookupElem)));

    [Fact]
    public void Store_double_word_register() =>
        Assert.Equal("7b10080000000000", FirstInstruction(a => a.Store(Size.DoubleWord, Register.R0, 8, Register.R1)));

    [Fact]
    public void Mov_immediate_then_exit()
    {
        var asm = new Assembler();
        asm.Mov(Register.R0, 2);
        asm.Exit();
        Assert.Equal("b700000002000000" + "9500000000000000", Hex(asm.Assemble("t", ProgramType.Xdp).Encode(new Dictionary<MapSpec, int>())));
    }

    [Fact]
    public void Immediate_that_does_not_fit_32_bits_is_refused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new Assembler().Mov(Register.R0, 1L << 32));

    [Fact]
    public void Jumps_resolve_to_target_minus_next_pc_counting_both_ld_imm64_slots()
    {
        var asm = new Assembler();
        var top = asm.NewLabel("top");
        var bottom = asm.NewLabel("bottom");
        asm.Mark(top);                        // 0
        asm.Jump(JumpOp.Jeq, Register.R2, 0, bottom); // 0: forward over ld_imm64 (1, 2) and the backward jump (3)
        asm.LoadImm64(Register.R1, 1);        // 1, 2
        asm.Jump(JumpOp.Jeq, Register.R1, 0, top); // 3
        asm.Mark(bottom);                     // 4
        asm.Exit();                           // 4

        var instructions = asm.Assemble("t", ProgramType.Xdp).Instructions;
        Assert.Equal(5, instructions.Count);
        Assert.Equal(4 - (0 + 1), instructions[0].Offset);
        Assert.Equal(0 - (3 + 1), instructions[3].Offset);
    }

    [Fact]
    public void Jump_to_the_next_instruction_has_offset_zero_and_to_itself_minus_one()
    {
        var asm = new Assembler();
        var next = asm.NewLabel("next");
        var self = asm.NewLabel("self");
        asm.Jump(next);
        asm.Mark(next);
        asm.Mark(self);
        asm.Jump(self);
        var instructions = asm.Assemble("t", ProgramType.Xdp).Instructions;
        Assert.Equal(((short)0, (short)-1), (instructions[0].Offset, instructions[1].Offset));
    }

    [Fact]
    public void Unreachable_instructions_are_dropped_and_jumps_follow()
    {
        var asm = new Assembler();
        var end = asm.NewLabel("end");
        asm.BeginRegion("first");
        asm.Mov(Register.R0, 1);              // 0
        asm.Jump(end);                        // 1
        asm.BeginRegion("dead");
        asm.Mov(Register.R0, 2);              // never reached
        asm.LoadImm64(Register.R1, 3);        // never reached (both slots)
        asm.BeginRegion("last");
        asm.Mark(end);
        asm.Exit();                           // 2
        var program = asm.Assemble("t", ProgramType.Xdp);
        Assert.Equal(3, program.Instructions.Count);
        Assert.Equal(0, program.Instructions[1].Offset);
        Assert.Equal(["first", "last"], program.Regions.Select(r => r.Label));
    }

    [Fact]
    public void Label_never_placed_throws_at_assembly()
    {
        var asm = new Assembler();
        asm.Jump(asm.NewLabel("nowhere"));
        var e = Assert.Throws<InvalidOperationException>(() => asm.Assemble("t", ProgramType.Xdp));
        Assert.Contains("'nowhere' is never placed", e.Message);
    }

    [Fact]
    public void Label_placed_twice_throws()
    {
        var asm = new Assembler();
        var label = asm.NewLabel("twice");
        asm.Mark(label);
        asm.Exit();
        var e = Assert.Throws<InvalidOperationException>(() => asm.Mark(label));
        Assert.Contains("'twice' is placed twice", e.Message);
    }

    [Fact]
    public void Goto_beyond_16_bit_reach_becomes_gotol_and_a_conditional_one_throws()
    {
        var asm = new Assembler();
        var far = asm.NewLabel("far");
        var body = asm.NewLabel("body");
        asm.Jump(JumpOp.Jne, Register.R1, 0, body); // keeps the body reachable
        asm.Jump(far);
        asm.Mark(body);
        for (int i = 0; i < short.MaxValue + 1; i++) asm.Mov(Register.R0, 1);
        asm.Mark(far);
        asm.Exit();
        var gotol = asm.Assemble("t", ProgramType.Xdp).Instructions[1];
        Assert.Equal(((byte)0x06, (short)0, short.MaxValue + 1), (gotol.Opcode, gotol.Offset, gotol.Immediate)); // JMP32 | JA, offset in imm

        var conditional = new Assembler();
        var target = conditional.NewLabel("far");
        conditional.Jump(JumpOp.Jeq, Register.R1, 0, target);
        for (int i = 0; i < short.MaxValue + 1; i++) conditional.Mov(Register.R0, 1);
        conditional.Mark(target);
        conditional.Exit();
        Assert.Throws<InvalidOperationException>(() => conditional.Assemble("t", ProgramType.Xdp));
    }

    [Fact]
    public void Regions_are_recorded_up_to_the_next_region_and_empty_ones_are_dropped()
    {
        var asm = new Assembler();
        asm.BeginRegion("first");
        asm.Mov(Register.R0, 1);
        asm.LoadImm64(Register.R1, 0);
        asm.BeginRegion("empty");
        asm.BeginRegion("last");
        asm.Exit();
        var program = asm.Assemble("t", ProgramType.Xdp);
        Assert.Equal([new InstructionRegion(0, 3, "first"), new InstructionRegion(3, 4, "last")], program.Regions);
    }

    [Fact]
    public void Instruction_round_trips_through_its_encoding()
    {
        var instruction = new Instruction(0x56, 5, 3, -2, unchecked((int)0xc8004d0a));
        var bytes = new byte[Instruction.Size];
        instruction.WriteTo(bytes);
        Assert.Equal(instruction, Instruction.ReadFrom(bytes));
        Assert.Equal(OpClass.Jmp32, instruction.Class);
    }
}
