using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Kernel;
using Xunit;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// A compiled chain loaded through the verifier (with a scratch counter map, attached nowhere), then read back as
/// the kernel holds it: the translated image, the map it uses, and its listing.
/// </summary>
[Collection("kernel")]
public sealed class ProgramImageTests
{
    private sealed class Loaded : IDisposable
    {
        public Loaded()
        {
            Compiled = ChainCompiler.Compile(Samples.Demo.Chains[0]);
            Counters = BpfMap.Create(Compiled.Counters);
            Program = LoadedProgram.Load(Compiled.Program, new Dictionary<MapSpec, BpfMap> { [Compiled.Counters] = Counters });
        }

        public CompiledChain Compiled { get; }
        public BpfMap Counters { get; }
        public LoadedProgram Program { get; }

        public void Dispose()
        {
            Program.Dispose();
            Counters.Dispose();
        }
    }

    [Fact]
    public void The_translated_image_of_a_compiled_chain_ends_in_exit_and_uses_its_counter_map()
    {
        using var loaded = new Loaded();
        var image = ProgramImage.Read(loaded.Program);

        Assert.NotEmpty(image.Instructions);
        Assert.Equal(0x95, image.Instructions[^1].Opcode);
        Assert.Equal(loaded.Program.Info().Id, image.Info.Id);
        Assert.Equal((uint)image.Instructions.Count * Instruction.Size, image.Info.XlatedBytes);
        var mapId = Assert.Single(image.MapIds);

        // The counter map is loaded by its id; the per-CPU lookup is either still a call or inlined by the verifier
        // (then the image is longer than what was loaded, and no call remains).
        var lines = image.Disassemble();
        Assert.Contains(lines, l => l.Text.EndsWith($"= map[id:{mapId}]", StringComparison.Ordinal));
        bool called = lines.Any(l => l.Text.StartsWith("(85) call ", StringComparison.Ordinal));
        bool inlined = image.Instructions.Count > loaded.Compiled.Program.Instructions.Count;
        Assert.True(called || inlined, string.Join("\n", lines.Select(l => l.Line)));
    }

    [Fact]
    public void Every_translated_line_disassembles()
    {
        using var loaded = new Loaded();
        var image = ProgramImage.Read(loaded.Program);
        var lines = image.Disassemble();
        Assert.Equal(image.Instructions.Count, lines.Sum(l => l.Slots));
        Assert.All(lines, l => Assert.DoesNotContain("unknown", l.Text));
        Assert.Equal("(95) exit", lines[^1].Text);
        // XDP's u32 context loads become u64 loads of struct xdp_buff's pointers.
        Assert.Contains(lines, l => l.Text.StartsWith("(79) ", StringComparison.Ordinal) && l.Text.EndsWith("*(u64 *)(r1 +0)", StringComparison.Ordinal));
    }

    [Fact]
    public void A_program_read_by_id_is_the_same_image()
    {
        using var loaded = new Loaded();
        var byFd = ProgramImage.Read(loaded.Program);
        var byId = ProgramImage.ReadById(byFd.Info.Id);
        Assert.Equal(byFd.Instructions, byId.Instructions);
        Assert.Equal(byFd.MapIds, byId.MapIds);
        Assert.Equal(loaded.Compiled.Program.Name, byId.Info.Name);

        var listing = byId.Listing("demo", "INPUT").ToList();
        Assert.Equal(byId.Disassemble().Select(l => l.Line), listing.Select(l => l.Text));
        Assert.All(listing, l => Assert.Equal($"xlated, id {byId.Info.Id} tag {byId.Info.Tag}", l.Region));
    }

    [Fact]
    public void Helper_calls_of_the_image_are_named_from_kernel_symbols()
    {
        // The kernel replaces a helper id by the helper's address relative to __bpf_call_base; kallsyms names it back.
        var asm = new Assembler();
        asm.Call(Helper.KtimeGetNs);
        asm.Mov(Register.R0, 2);
        asm.Exit();
        using var program = LoadedProgram.Load(asm.Assemble("t_image_call", ProgramType.Xdp), new Dictionary<MapSpec, BpfMap>());
        var lines = ProgramImage.Read(program).Disassemble();
        Assert.Equal(3, lines.Count);
        Assert.Matches(@"^\(85\) call [A-Za-z_][A-Za-z0-9_.]*ktime_get_ns#-?\d+$", lines[0].Text);
        Assert.Equal(["(b7) r0 = 2", "(95) exit"], lines.Skip(1).Select(l => l.Text));
    }

    [Fact]
    public void Kfunc_calls_of_a_netfilter_image_are_named_from_kernel_symbols()
    {
        var chain = new Rules.Chain("INPUT", Rules.Hook.NfInput, null, Rules.Verdict.Accept,
            [new Rules.Rule("telnet", Matches.Simple(protocol: Rules.IpProtocol.Tcp, destinationPort: 23), Rules.Verdict.Drop)]);
        var compiled = ChainCompiler.Compile(chain);
        Assert.Contains(Disassembler.Disassemble(compiled.Program), l => l.Text == "(85) call bpf_dynptr_from_skb#0");
        using var counters = BpfMap.Create(compiled.Counters);
        using var program = LoadedProgram.Load(compiled.Program, new Dictionary<MapSpec, BpfMap> { [compiled.Counters] = counters });
        var lines = ProgramImage.Read(program).Disassemble();
        Assert.All(lines, l => Assert.DoesNotContain("unknown", l.Text));
        // The verifier may pick a read-only variant (bpf_dynptr_from_skb_rdonly); either way the kernel symbol names it.
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l.Text, @"^\(85\) call bpf_dynptr_from_skb\w*#-?\d+$"));
    }

    [Fact]
    public void An_id_that_is_not_loaded_is_ProgramNotFound()
    {
        var e = Assert.Throws<KernelException>(() => ProgramImage.ReadById(uint.MaxValue - 1));
        Assert.Equal("ProgramNotFound", e.ErrorId);
        Assert.Equal(FailureCategory.ObjectNotFound, e.Category);
    }
}
