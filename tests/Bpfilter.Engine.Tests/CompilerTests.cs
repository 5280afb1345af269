using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Rules;
using Xunit;

namespace Bpfilter.Engine.Tests;

public sealed class CompilerTests
{
    private static CompiledChain CompileDemo() => ChainCompiler.Compile(Assert.Single(Samples.Demo.Chains));

    private static Chain ChainOf(string name, params Rule[] rules) => new(name, Hook.Xdp, "eth0", Verdict.Accept, rules);

    private static bool IsJump(Instruction i) =>
        i.Class is OpClass.Jmp or OpClass.Jmp32 && (i.Opcode & 0xf0) is not (0x80 or 0x90);

    [Fact]
    public void Demo_chain_compiles_to_an_xdp_program_that_ends_in_exit()
    {
        var program = CompileDemo().Program;
        Assert.Equal(ProgramType.Xdp, program.Type);
        Assert.Equal("bf_INPUT", program.Name);
        Assert.Equal("GPL", program.License);
        Assert.Equal(0x95, program.Instructions[^1].Opcode);
    }

    [Fact]
    public void Every_jump_of_the_demo_lands_inside_the_program_and_never_in_an_ld_imm64_second_slot()
    {
        var instructions = CompileDemo().Program.Instructions;
        var secondSlots = Enumerable.Range(0, instructions.Count).Where(i => i > 0 && instructions[i - 1].IsLoadImm64).ToHashSet();
        Assert.NotEmpty(secondSlots);
        int jumps = 0;
        for (int pc = 0; pc < instructions.Count; pc++)
        {
            if (!IsJump(instructions[pc]) || secondSlots.Contains(pc)) continue;
            jumps++;
            int target = pc + 1 + instructions[pc].Offset;
            Assert.InRange(target, 0, instructions.Count - 1);
            Assert.DoesNotContain(target, secondSlots);
        }
        Assert.True(jumps > 10, $"only {jumps} jumps");
    }

    [Fact]
    public void Demo_program_references_exactly_one_per_cpu_counter_array_with_a_slot_per_rule_plus_three()
    {
        var compiled = CompileDemo();
        var map = Assert.Single(compiled.Program.Maps);
        Assert.Equal(compiled.Counters, map);
        Assert.Equal((MapType.PerCpuArray, 4u, 16u, 6u, "c_INPUT"), (map.Type, map.KeySize, map.ValueSize, map.MaxEntries, map.Name));
        Assert.Equal(new CounterLayout(3), compiled.Layout);
        Assert.Equal((3, 4, 5, 6), (compiled.Layout.PolicySlot, compiled.Layout.NotIpSlot, compiled.Layout.MalformedSlot, compiled.Layout.SlotCount));
        Assert.All(compiled.Program.MapReferences, r => Assert.True(compiled.Program.Instructions[r.InstructionIndex].IsLoadImm64));
    }

    [Fact]
    public void Demo_program_has_one_region_per_rule_labelled_with_the_rule_name()
    {
        var program = CompileDemo().Program;
        var regions = program.Regions;
        Assert.Equal(["rule 1 drop-blocked-host", "rule 2 no-telnet", "rule 3 allow-dns"],
            regions.Select(r => r.Label).Where(l => l.StartsWith("rule ", StringComparison.Ordinal)));
        Assert.Equal(["prologue", "not ip", "malformed", "rule 1 drop-blocked-host", "rule 2 no-telnet", "rule 3 allow-dns", "policy", "epilogue"],
            regions.Select(r => r.Label));
        Assert.All(regions.Zip(regions.Skip(1)), pair => Assert.Equal(pair.First.End, pair.Second.Start));
        Assert.Equal((0, program.Instructions.Count), (regions[0].Start, regions[^1].End));
    }

    [Fact]
    public void Unnamed_rule_region_is_labelled_with_its_number_only()
    {
        var regions = ChainCompiler.Compile(ChainOf("INPUT", new Rule(null, Match.Any, Verdict.Drop))).Program.Regions;
        Assert.Contains(regions, r => r.Label == "rule 1");
    }

    [Theory]
    [InlineData("10.0.0.200", 0xffffffffu, 0x0a0000c8u)]  // top bit clear in host order, set in the last octet: all 32-bit
    [InlineData("10.0.0.128/25", 0xffffff80u, 0x0a000080u)]
    [InlineData("10.200.0.66", 0xffffffffu, 0x0ac80042u)]
    [InlineData("192.168.0.0/16", 0xffff0000u, 0xc0a80000u)]
    public void Address_is_compared_in_host_order_with_32_bit_operations(string source, uint mask, uint network)
    {
        // w0 = source word 0 from the record; [w0 &= mask]; w0 ^= network; if w0 != 0: 32-bit all through, so the
        // kernel sign-extends nothing, and the ALU operation keeps the verifier from linking r0 to the record.
        var program = ChainCompiler.Compile(ChainOf("INPUT", new Rule("r", Matches.Simple(source: IpPrefix.Parse(source)), Verdict.Drop))).Program;
        var body = RuleBody(program, "rule 1 r");
        int load = body.FindIndex(i => i.Opcode == 0x61 && i.Src == (byte)Register.R10 && i.Offset == PacketRecordOffsets.SourceAddressWord0);
        Assert.True(load >= 0, "no load of the source address");
        int next = load + 1;
        if (mask != uint.MaxValue) Assert.Equal((0x54, unchecked((int)mask)), (body[next].Opcode, body[next++].Immediate)); // w0 &= mask
        Assert.Equal((0xa4, unchecked((int)network)), (body[next].Opcode, body[next++].Immediate));                         // w0 ^= network
        Assert.Equal((0x56, 0), (body[next].Opcode, body[next].Immediate));                                                  // if w0 != 0
    }

    [Fact]
    public void Prefix_of_length_zero_only_tests_the_family()
    {
        var ipv4 = ChainCompiler.Compile(ChainOf("INPUT", new Rule("r", new Match { Family = IpFamily.Ipv4 }, Verdict.Drop))).Program;
        var zero = ChainCompiler.Compile(ChainOf("INPUT", new Rule("r", Matches.Simple(source: IpPrefix.Parse("0.0.0.0/0")), Verdict.Drop))).Program;
        Assert.Equal(ipv4.Instructions, zero.Instructions);
    }

    [Fact]
    public void Port_is_compared_in_host_order_after_the_protocol_and_the_transport_header_tests()
    {
        var program = ChainCompiler.Compile(ChainOf("INPUT", new Rule("r", Matches.Simple(protocol: IpProtocol.Tcp, destinationPort: 23), Verdict.Drop))).Program;
        var body = RuleBody(program, "rule 1 r");
        Assert.Equal((0x61, PacketRecordOffsets.Protocol), (body[0].Opcode, body[0].Offset));   // w0 = protocol
        Assert.Equal((0xa4, 6), (body[1].Opcode, body[1].Immediate));                           // w0 ^= 6
        Assert.Equal((0x56, 0), (body[2].Opcode, body[2].Immediate));                           // if w0 != 0
        Assert.Equal((0x61, PacketRecordOffsets.HasTransport), (body[3].Opcode, body[3].Offset)); // read (not cut short)?
        Assert.Equal((0xa4, 1), (body[4].Opcode, body[4].Immediate));
        Assert.Equal((0x61, PacketRecordOffsets.DestinationPort), (body[6].Opcode, body[6].Offset));
        Assert.Equal((0xa4, 23), (body[7].Opcode, body[7].Immediate));                          // w0 ^= 23
    }

    private static List<Instruction> RuleBody(EbpfProgram program, string region)
    {
        var rule = Assert.Single(program.Regions, r => r.Label == region);
        return program.Instructions.Skip(rule.Start).Take(rule.End - rule.Start).ToList();
    }

    /// <summary>The record's offsets as the generated code uses them (PacketRecord is internal to the engine).</summary>
    private static class PacketRecordOffsets
    {
        public const short Protocol = -28, DestinationPort = -44, HasTransport = -132, SourceAddressWord0 = -148;
    }

    [Theory]
    [InlineData("drop", 1)]
    [InlineData("accept", 2)]
    public void Rule_verdict_becomes_the_xdp_return_code(string verdictName, int code)
    {
        var verdict = Verdict.Parse(verdictName);
        var program = ChainCompiler.Compile(ChainOf("INPUT", new Rule("r", Match.Any, verdict))).Program;
        var rule = Assert.Single(program.Regions, r => r.Label == "rule 1 r");
        Assert.Equal(new Instruction(0xb7, (byte)Register.R6, 0, 0, code), program.Instructions[rule.Start + 1]);
    }

    [Fact]
    public void Chain_without_rules_compiles_to_prologue_policy_and_epilogue()
    {
        var compiled = ChainCompiler.Compile(ChainOf("EMPTY"));
        Assert.Equal(3u, compiled.Counters.MaxEntries);
        Assert.DoesNotContain(compiled.Program.Regions, r => r.Label.StartsWith("rule", StringComparison.Ordinal));
        Assert.Equal(0x95, compiled.Program.Instructions[^1].Opcode);
        Assert.Single(compiled.Program.Maps);
    }

    [Theory]
    [InlineData("a-very-long-chain-name-with-d")] // 29, the longest chain name
    [InlineData("INPUT-2")]
    [InlineData("x")]
    public void Kernel_names_are_at_most_15_characters_of_letters_digits_underscore_and_dot(string chainName)
    {
        var compiled = ChainCompiler.Compile(ChainOf(chainName));
        foreach (var name in new[] { compiled.Program.Name, compiled.Counters.Name })
            Assert.Matches(new System.Text.RegularExpressions.Regex(@"\A[A-Za-z0-9_.]{1,15}\z"), name);
        Assert.StartsWith("bf_", compiled.Program.Name);
        Assert.StartsWith("c_", compiled.Counters.Name);
    }

    [Fact]
    public void Long_kernel_names_are_cut_at_15_and_dashes_become_underscores()
    {
        Assert.Equal("bf_a_very_long_", ChainCompiler.KernelName("bf_", "a-very-long-chain"));
        Assert.Equal("c_INPUT_2", ChainCompiler.KernelName("c_", "INPUT-2"));
    }
}
