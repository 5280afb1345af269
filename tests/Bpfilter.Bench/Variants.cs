using System.Buffers.Binary;
using System.Text.RegularExpressions;
using Bpfilter.Engine.Deployment;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Kernel.Links;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Bench;

/// <summary>A filter set up in a receiver namespace: how many packets it says it dropped, and how it goes away.</summary>
internal sealed class Installed(Func<ulong> dropped, Action? remove = null) : IDisposable
{
    /// <summary>The variant's own count of the packets its matching rule (or program) dropped.</summary>
    public ulong Dropped() => dropped();

    public void Dispose() => remove?.Invoke();
}

/// <summary>One way of dropping the generator's frames at the receiver, with N rules or none.</summary>
internal abstract partial class Variant(string name, bool usesRules)
{
    public string Name { get; } = name;

    /// <summary>False for the references (no filter, the always-drop programs), measured once per round.</summary>
    public bool UsesRules { get; } = usesRules;

    public abstract Installed Install(Topology topology, int rules);

    public static IReadOnlyList<Variant> All { get; } =
    [
        new NoFilter(),
        new Iptables("iptables-legacy", "iptables-legacy"),
        new Iptables("iptables-nft", "iptables-nft"),
        new Nftables("nftables linear", set: false),
        new Nftables("nftables set", set: true),
        new BpfilterChain("bpfilter xdp native", Hook.Xdp, XdpMode.Native),
        new BpfilterChain("bpfilter xdp generic", Hook.Xdp, XdpMode.Generic),
        new BpfilterChain("bpfilter tc-ingress", Hook.TcIngress, XdpMode.Native),
        new BpfilterChain("bpfilter nf-input", Hook.NfInput, XdpMode.Native),
        new AlwaysDrop("xdp always-drop", Hook.Xdp),
        new AlwaysDrop("tc-ingress always-drop", Hook.TcIngress),
        new AlwaysDrop("nf-input always-drop", Hook.NfInput),
    ];

    /// <summary>Nothing filters: the frames end in UDP with no socket to take them.</summary>
    private sealed class NoFilter() : Variant("no filter", false)
    {
        public override Installed Install(Topology topology, int rules) => new(topology.UdpNoPorts);
    }

    private sealed partial class Iptables(string name, string command) : Variant(name, true)
    {
        public override Installed Install(Topology topology, int rules)
        {
            Shell.InNamespace(topology.Receiver, $"{command}-restore", [], Rulesets.IptablesRestore(rules));
            return new(() =>
            {
                // One line for the last rule: pkts bytes target prot opt in out source destination.
                var line = Shell.InNamespace(topology.Receiver, command, ["-L", "INPUT", rules.ToString(), "-v", "-x", "-n"]);
                return ulong.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0]);
            });
        }
    }

    private sealed partial class Nftables(string name, bool set) : Variant(name, true)
    {
        public override Installed Install(Topology topology, int rules)
        {
            Shell.InNamespace(topology.Receiver, "nft", ["-f", "-"], set ? Rulesets.NftSet(rules) : Rulesets.NftLinear(rules));
            return new(() =>
            {
                var listing = Shell.InNamespace(topology.Receiver, "nft", ["list", "chain", "ip", "bench", "input"]);
                return ulong.Parse(CounterPattern().Matches(listing)[^1].Groups[1].Value);
            });
        }

        [GeneratedRegex(@"counter packets (\d+)")]
        private static partial Regex CounterPattern();
    }

    /// <summary>The pairs published by Bpfilter at one hook of the receiver, through the same path as Publish-BpfProgram.</summary>
    private sealed class BpfilterChain(string name, Hook hook, XdpMode mode) : Variant(name, true)
    {
        public override Installed Install(Topology topology, int rules)
        {
            var deployment = "bpft-bench-" + topology.Receiver.Split('-')[1];
            var iface = hook.IsNetfilter() ? null : topology.ReceiverInterface;
            var ruleset = new Ruleset(deployment, [new Chain("IN", hook, iface, Verdict.Accept, Rulesets.Pairs(rules), mode)]);
            Publisher.Publish(ruleset, new PublishOptions(topology.Receiver));
            return new(() => Deployments.Counters(deployment).First(r => r.Position == rules).Packets, () => Deployments.Unpublish(deployment));
        }
    }

    /// <summary>
    /// The floor of a hook: a program that drops everything. At XDP it is the bare return (the veth counts its XDP
    /// drops); at tc-ingress and nf-input it adds one to a per-CPU counter, as every Bpfilter program does once.
    /// </summary>
    private sealed class AlwaysDrop(string name, Hook hook) : Variant(name, false)
    {
        private static readonly MapSpec CounterSpec = new("drops", MapType.PerCpuArray, 4, 8, 1);

        public override Installed Install(Topology topology, int rules)
        {
            var counter = BpfMap.Create(CounterSpec);
            LoadedProgram? program = null;
            BpfLink? link = null;
            try
            {
                program = LoadedProgram.Load(Program(), new Dictionary<MapSpec, BpfMap> { [CounterSpec] = counter });
                var loaded = program;
                link = NetworkNamespace.Run(topology.Receiver, () =>
                {
                    uint ifindex = Interfaces.IndexOf(topology.ReceiverInterface, topology.Receiver);
                    return hook switch
                    {
                        Hook.Xdp => (BpfLink)XdpLink.Attach(loaded, ifindex, topology.ReceiverInterface, XdpMode.Native),
                        Hook.TcIngress => TcxLink.Attach(loaded, ifindex, topology.ReceiverInterface, egress: false, TcxOrder.Last),
                        _ => NetfilterLink.Attach(loaded, Hook.NfInput, NetfilterLink.FamilyIpv4, 0),
                    };
                });
            }
            catch
            {
                program?.Dispose();
                counter.Dispose();
                throw;
            }
            Func<ulong> dropped = hook == Hook.Xdp
                ? () => Shell.EthtoolStat(topology.Receiver, topology.ReceiverInterface, "rx_queue_0_xdp_drops")
                : () => counter.LookupPerCpu(0).Aggregate(0UL, (sum, cpu) => sum + BinaryPrimitives.ReadUInt64LittleEndian(cpu));
            return new(dropped, () =>
            {
                link.Dispose();
                program.Dispose();
                counter.Dispose();
            });
        }

        private EbpfProgram Program()
        {
            var asm = new Assembler();
            var (type, attach, drop) = hook switch
            {
                Hook.Xdp => (ProgramType.Xdp, 0u, 1 /* XDP_DROP */),
                Hook.TcIngress => (ProgramType.SchedCls, 0u, 2 /* TCX_DROP */),
                _ => (ProgramType.Netfilter, 45u /* BPF_NETFILTER */, 0 /* NF_DROP */),
            };
            if (hook != Hook.Xdp)
            {
                var done = asm.NewLabel("done");
                asm.Store(Size.Word, Register.R10, -4, 0);
                asm.LoadMap(Register.R1, CounterSpec);
                asm.Mov(Register.R2, Register.R10);
                asm.Alu64(AluOp.Add, Register.R2, -4);
                asm.Call(Helper.MapLookupElem);
                asm.Jump(JumpOp.Jeq, Register.R0, 0, done);
                asm.Load(Size.DoubleWord, Register.R1, Register.R0, 0);
                asm.Alu64(AluOp.Add, Register.R1, 1);
                asm.Store(Size.DoubleWord, Register.R0, 0, Register.R1);
                asm.Mark(done);
            }
            asm.Mov(Register.R0, (long)drop);
            asm.Exit();
            return asm.Assemble("bench_drop", type, attach);
        }
    }
}
