namespace Bpfilter.Engine.Rules;

/// <summary>Where in the kernel a chain runs. The YAML spelling is <see cref="HookNames"/>.</summary>
public enum Hook
{
    /// <summary>eXpress Data Path: ingress of one interface, before the network stack, at layer 2.</summary>
    Xdp,
    /// <summary>Traffic control ingress of one interface (a TCX link), at layer 2, after XDP.</summary>
    TcIngress,
    /// <summary>Traffic control egress of one interface (a TCX link), at layer 2.</summary>
    TcEgress,
    /// <summary>Netfilter PRE_ROUTING of a network namespace, at layer 3, before the routing decision.</summary>
    NfPrerouting,
    /// <summary>Netfilter LOCAL_IN: packets for this host (iptables INPUT).</summary>
    NfInput,
    /// <summary>Netfilter FORWARD: packets routed through this host (iptables FORWARD).</summary>
    NfForward,
    /// <summary>Netfilter LOCAL_OUT: packets this host sends (iptables OUTPUT).</summary>
    NfOutput,
    /// <summary>Netfilter POST_ROUTING: every packet leaving, after the routing decision.</summary>
    NfPostrouting,
    /// <summary>Packets received by sockets of the processes in one cgroup v2 directory, at layer 3.</summary>
    CgroupIngress,
    /// <summary>Packets sent by sockets of the processes in one cgroup v2 directory, at layer 3.</summary>
    CgroupEgress,
}

/// <summary>What a hook attaches to.</summary>
public enum HookTarget
{
    /// <summary>One network interface (XDP, TC).</summary>
    Interface,
    /// <summary>A whole network namespace (netfilter).</summary>
    Namespace,
    /// <summary>A cgroup v2 directory.</summary>
    Cgroup,
}

/// <summary>How an XDP program is attached.</summary>
public enum XdpMode
{
    /// <summary>In the driver (veth and most NICs). The fastest software path.</summary>
    Native,
    /// <summary>In the generic network stack: works on any device, slower.</summary>
    Generic,
    /// <summary>On the NIC itself (SmartNICs with BPF offload only): the host CPU never sees dropped packets.</summary>
    Offload,
}

/// <summary>Where a TCX program goes among the other programs on the same hook.</summary>
public enum TcxOrder
{
    /// <summary>After every program already attached (the default).</summary>
    Last,
    /// <summary>Before every program already attached.</summary>
    First,
}

/// <summary>The YAML and display spelling of hooks ("xdp", "tc-ingress", "nf-input", ...), and what each can see.</summary>
public static class HookNames
{
    private static readonly (Hook Hook, string Name)[] All =
    [
        (Hook.Xdp, "xdp"), (Hook.TcIngress, "tc-ingress"), (Hook.TcEgress, "tc-egress"),
        (Hook.NfPrerouting, "nf-prerouting"), (Hook.NfInput, "nf-input"), (Hook.NfForward, "nf-forward"),
        (Hook.NfOutput, "nf-output"), (Hook.NfPostrouting, "nf-postrouting"),
        (Hook.CgroupIngress, "cgroup-ingress"), (Hook.CgroupEgress, "cgroup-egress"),
    ];

    public static IReadOnlyList<string> Names { get; } = All.Select(a => a.Name).ToArray();

    public static string ToName(this Hook hook) => All.First(a => a.Hook == hook).Name;

    public static bool TryParse(string text, out Hook hook)
    {
        foreach (var (h, name) in All)
        {
            if (string.Equals(name, text, StringComparison.OrdinalIgnoreCase) || string.Equals(h.ToString(), text, StringComparison.OrdinalIgnoreCase))
            {
                hook = h;
                return true;
            }
        }
        hook = default;
        return false;
    }

    public static HookTarget Target(this Hook hook) => hook switch
    {
        Hook.Xdp or Hook.TcIngress or Hook.TcEgress => HookTarget.Interface,
        Hook.CgroupIngress or Hook.CgroupEgress => HookTarget.Cgroup,
        _ => HookTarget.Namespace,
    };

    public static bool IsNetfilter(this Hook hook) => hook.Target() == HookTarget.Namespace;
}
