using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Rules;
using Xunit;

namespace Bpfilter.Engine.Tests;

public sealed class OffloadProfileTests
{
    [Fact]
    public void An_offload_chain_compiles_to_what_the_NIC_accepts()
    {
        var chain = new Chain("INPUT", Hook.Xdp, "eth0", Verdict.Drop,
            [new Rule("web", Matches.Simple(protocol: IpProtocol.Tcp, destinationPort: 443), Verdict.Accept)], XdpMode.Offload);
        var compiled = ChainCompiler.Compile(chain);
        Assert.Equal(MapType.Array, compiled.Counters.Type);
        Assert.Empty(OffloadProfile.Violations(compiled.Program));
        OffloadProfile.Check(compiled);
    }

    [Fact]
    public void Per_cpu_maps_kernel_functions_and_unknown_helpers_are_named_with_their_rule()
    {
        var asm = new Assembler();
        var counters = new MapSpec("c_x", MapType.PerCpuArray, 4, 16, 4);
        asm.BeginRegion("rule 1 uses-kfunc");
        asm.CallKfunc("bpf_dynptr_from_skb");
        asm.BeginRegion("rule 2 uses-time");
        asm.Call(Helper.KtimeGetNs);
        asm.LoadMap(Register.R1, counters);
        asm.Mov(Register.R0, 2);
        asm.Exit();
        var violations = OffloadProfile.Violations(asm.Assemble("x", ProgramType.Xdp));
        Assert.Equal(3, violations.Count);
        Assert.Contains(violations, v => v.Contains("c_x") && v.Contains("PerCpuArray"));
        Assert.Contains(violations, v => v.StartsWith("rule 1 uses-kfunc calls a kernel function"));
        Assert.Contains(violations, v => v.StartsWith("rule 2 uses-time calls helper #5"));
    }

    [Fact]
    public void Check_refuses_before_anything_loads_and_names_the_chain()
    {
        var chain = new Chain("INPUT", Hook.NfInput, null, Verdict.Accept, []);
        var compiled = ChainCompiler.Compile(chain); // per-CPU counters and dynptr kfuncs: nothing a NIC runs
        var error = Assert.Throws<BpfilterException>(() => OffloadProfile.Check(compiled));
        Assert.Equal("OffloadIncompatible", error.ErrorId);
        Assert.StartsWith("chain 'INPUT' cannot be offloaded: ", error.Message);
    }
}
