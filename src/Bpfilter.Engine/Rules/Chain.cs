namespace Bpfilter.Engine.Rules;

/// <summary>
/// An ordered list of rules attached at one hook. Rules are tried in order, the first that matches decides;
/// a packet that no rule matches gets the policy.
/// </summary>
public sealed record Chain
{
    /// <summary>The netfilter priority when none is given: iptables' filter table runs at 0 too.</summary>
    public const int DefaultPriority = 0;

    public Chain(string name, Hook hook, string? interfaceName, Verdict policy, IReadOnlyList<Rule> rules,
        XdpMode mode = XdpMode.Native, int? priority = null, TcxOrder order = TcxOrder.Last, string? cgroup = null,
        string? networkNamespace = null)
    {
        Names.CheckChainName(name);
        var hookName = hook.ToName();
        switch (hook.Target())
        {
            case HookTarget.Interface:
                if (interfaceName is null) throw new RulesetValidationException($"chain '{name}' at {hookName} needs an interface", "interface");
                Names.CheckInterfaceName(interfaceName);
                break;
            case HookTarget.Namespace when interfaceName is not null:
                throw new RulesetValidationException(
                    $"chain '{name}': {hookName} sees the whole network namespace; it takes no interface", "interface");
            case HookTarget.Cgroup when interfaceName is not null:
                throw new RulesetValidationException($"chain '{name}': {hookName} attaches to a cgroup; it takes no interface", "interface");
        }
        if (hook.Target() == HookTarget.Cgroup)
        {
            if (cgroup is null) throw new RulesetValidationException($"chain '{name}' at {hookName} needs a cgroup", "cgroup");
            Names.CheckCgroupPath(cgroup);
        }
        else if (cgroup is not null)
            throw new RulesetValidationException($"chain '{name}': only cgroup hooks take a cgroup, not {hookName}", "cgroup");
        if (mode != XdpMode.Native && hook != Hook.Xdp)
            throw new RulesetValidationException($"chain '{name}': mode is for xdp chains only, not {hookName}", "mode");
        if (priority is not null && !hook.IsNetfilter())
            throw new RulesetValidationException($"chain '{name}': priority is for netfilter (nf-*) chains only, not {hookName}", "priority");
        if (priority is int p && (p <= int.MinValue + 1 || p >= int.MaxValue))
            throw new RulesetValidationException($"chain '{name}': priority {p} is reserved by the kernel", "priority");
        if (order != TcxOrder.Last && hook is not (Hook.TcIngress or Hook.TcEgress))
            throw new RulesetValidationException($"chain '{name}': order is for tc chains only, not {hookName}", "order");
        if (networkNamespace is not null) Names.CheckNamespace(networkNamespace);
        if (policy.Kind is not (VerdictKind.Accept or VerdictKind.Drop))
            throw new RulesetValidationException($"chain '{name}': a policy is accept or drop, not {policy}", "policy");
        CheckRuleNames(name, rules);
        Name = name;
        Hook = hook;
        Interface = interfaceName;
        Policy = policy;
        Rules = new ValueList<Rule>(rules);
        Mode = mode;
        Priority = hook.IsNetfilter() ? priority ?? DefaultPriority : null;
        Order = order;
        Cgroup = cgroup;
        NetworkNamespace = networkNamespace;
    }

    public string Name { get; }
    public Hook Hook { get; }

    /// <summary>The interface of an xdp or tc chain; null for the others.</summary>
    public string? Interface { get; }
    public XdpMode Mode { get; }
    public Verdict Policy { get; }
    public ValueList<Rule> Rules { get; }

    /// <summary>Netfilter hook priority (lower runs first); null for other hooks.</summary>
    public int? Priority { get; }
    public TcxOrder Order { get; }

    /// <summary>The cgroup v2 directory of a cgroup chain: absolute, or relative to the cgroup2 mount.</summary>
    public string? Cgroup { get; }

    /// <summary>The network namespace the chain attaches in (a name under /run/netns or a path); null for the publisher's own or the publish's -NetworkNamespace.</summary>
    public string? NetworkNamespace { get; }

    internal static void CheckRuleNames(string chain, IReadOnlyList<Rule> rules)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < rules.Count; i++)
        {
            if (rules[i].Name is { } ruleName && !seen.Add(ruleName))
                throw new RulesetValidationException($"chain '{chain}' has two rules named '{ruleName}'", "name", i);
        }
    }

    /// <summary>Where the chain attaches, for messages: "xdp on eth0", "nf-input", "cgroup-egress on /sys/fs/cgroup/x".</summary>
    public string AttachPoint => Hook.ToName() + (Interface is not null ? $" on {Interface}" : Cgroup is not null ? $" on {Cgroup}" : "")
        + (Priority is int p && p != DefaultPriority ? $" at priority {p}" : "");
}
