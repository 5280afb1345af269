using Bpfilter.Engine.Compiler.Matchers;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Compiler;

/// <summary>
/// Lowers one chain into one program: parse the headers once, then each rule as a run of compares that
/// fall through to the next rule on the first mismatch, then the policy; every path ends in one epilogue
/// that adds the packet to its counter slot and returns the verdict.
/// </summary>
public static class ChainCompiler
{
    public static CompiledChain Compile(Chain chain)
    {
        var hook = HookFlavour.For(chain.Hook);
        var layout = new CounterLayout(chain.Rules.Count);
        // Offloaded programs run on the NIC, which has no per-CPU maps: one shared array, added to atomically.
        bool shared = chain.Mode == XdpMode.Offload;
        var counters = new MapSpec(KernelName("c_", chain.Name), shared ? MapType.Array : MapType.PerCpuArray, 4, CounterLayout.ValueSize, (uint)layout.SlotCount);
        var asm = new Assembler();
        var notIpv4 = asm.NewLabel("not_ipv4");
        var malformed = asm.NewLabel("malformed");
        var count = asm.NewLabel("count");

        asm.BeginRegion("prologue");
        hook.EmitParse(asm, notIpv4, malformed);
        var rules = asm.NewLabel("rules");
        asm.Jump(rules);

        // The parser's exits sit right after it, within reach of its 16-bit conditional jumps however long the chain.
        asm.BeginRegion("not ipv4");
        asm.Mark(notIpv4);
        EmitDecision(asm, layout.NotIpv4Slot, hook.ReturnCode(Verdict.Accept), count);
        asm.BeginRegion("malformed");
        asm.Mark(malformed);
        EmitDecision(asm, layout.MalformedSlot, hook.ReturnCode(Verdict.Drop), count);

        // The verifier refuses unreachable code: after a rule that matches everything, nothing more is emitted
        // (later rules keep their counter slots, which stay at zero).
        asm.Mark(rules);
        bool decided = false;
        for (int i = 0; i < chain.Rules.Count && !decided; i++)
        {
            var rule = chain.Rules[i];
            asm.BeginRegion($"rule {i + 1}" + (rule.Name is null ? "" : $" {rule.Name}"));
            var next = asm.NewLabel($"rule_{i + 1}_next");
            EmitMatch(asm, rule.Match, next);
            EmitDecision(asm, i, hook.ReturnCode(rule.Verdict), count);
            decided = rule.Match with { Source = null, Destination = null } == Match.Any && rule.Match.Source is null or { IsAnyAddress: true } && rule.Match.Destination is null or { IsAnyAddress: true };
            if (!decided) asm.Mark(next);
        }

        if (!decided)
        {
            asm.BeginRegion("policy");
            EmitDecision(asm, layout.PolicySlot, hook.ReturnCode(chain.Policy), count);
        }

        asm.BeginRegion("epilogue");
        asm.Mark(count);
        EmitCountAndReturn(asm, counters, shared);

        var program = asm.Assemble(KernelName("bf_", chain.Name), hook.ProgramType, hook.ExpectedAttachType);
        return new CompiledChain(chain, program, counters, layout);
    }

    private static void EmitMatch(Assembler asm, Match match, Label noMatch)
    {
        if (match.Protocol is { } protocol) ProtocolMatcher.Emit(asm, protocol.Protocol, noMatch);
        if (match.Source is { } source) Ipv4AddressMatcher.Emit(asm, Registers.SourceAddress, source.Prefixes[0], noMatch);
        if (match.Destination is { } destination) Ipv4AddressMatcher.Emit(asm, Registers.DestinationAddress, destination.Prefixes[0], noMatch);
        if (match.SourcePort is { } sourcePort) PortMatcher.Emit(asm, Registers.SourcePort, sourcePort.Ranges[0].First, noMatch);
        if (match.DestinationPort is { } destinationPort) PortMatcher.Emit(asm, Registers.DestinationPort, destinationPort.Ranges[0].First, noMatch);
    }

    private static void EmitDecision(Assembler asm, int slot, int returnCode, Label count)
    {
        asm.Mov(Registers.CounterSlot, slot);
        asm.Mov(Registers.Verdict, returnCode);
        asm.Jump(count);
    }

    /// <summary>
    /// counters[slot].packets += 1; counters[slot].bytes += packet length; return verdict.
    /// A plain add is safe on a per-CPU slot (these hooks do not nest on one CPU); a shared slot needs an atomic add.
    /// </summary>
    private static void EmitCountAndReturn(Assembler asm, MapSpec counters, bool shared)
    {
        var done = asm.NewLabel("return");
        asm.Store(Size.Word, Register.R10, StackSlots.CounterKey, Registers.CounterSlot);
        asm.LoadMap(Register.R1, counters);
        asm.Mov(Register.R2, Register.R10);
        asm.Alu64(AluOp.Add, Register.R2, StackSlots.CounterKey);
        asm.Call(Helper.MapLookupElem);
        asm.Jump(JumpOp.Jeq, Register.R0, 0, done);
        asm.Load(Size.DoubleWord, Register.R2, Register.R10, StackSlots.PacketLength);
        if (shared)
        {
            asm.Mov(Register.R1, 1);
            asm.AtomicAdd(Size.DoubleWord, Register.R0, 0, Register.R1);
            asm.AtomicAdd(Size.DoubleWord, Register.R0, 8, Register.R2);
        }
        else
        {
            asm.Load(Size.DoubleWord, Register.R1, Register.R0, 0);
            asm.Alu64(AluOp.Add, Register.R1, 1);
            asm.Store(Size.DoubleWord, Register.R0, 0, Register.R1);
            asm.Load(Size.DoubleWord, Register.R1, Register.R0, 8);
            asm.Alu64(AluOp.Add, Register.R1, Register.R2);
            asm.Store(Size.DoubleWord, Register.R0, 8, Register.R1);
        }
        asm.Mark(done);
        asm.Mov(Register.R0, Registers.Verdict);
        asm.Exit();
    }

    /// <summary>Kernel object names: 15 characters of [A-Za-z0-9_.] at most.</summary>
    internal static string KernelName(string prefix, string name)
    {
        var clean = new string(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' ? c : '_').ToArray());
        var full = prefix + clean;
        return full.Length <= 15 ? full : full[..15];
    }
}
