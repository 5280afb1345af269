using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Formats.Iptables;

/// <summary>
/// Where a chain of a dump attaches: a hook, and the interface (xdp, tc) or cgroup (cgroup hooks) it needs. Written
/// "nf-input", "xdp:eth1", "xdp:eth1:generic", "tc-ingress:eth0" or "cgroup-ingress:/sys/fs/cgroup/web".
/// </summary>
public sealed record ChainPlacement
{
    public ChainPlacement(Hook hook, string? target = null, XdpMode mode = XdpMode.Native)
    {
        var kind = hook.Target();
        try
        {
            // A chain checks every combination; one without rules checks the placement.
            _ = new Chain("placement", hook, kind == HookTarget.Cgroup ? null : target, Verdict.Accept, [], mode,
                cgroup: kind == HookTarget.Cgroup ? target : null);
        }
        catch (RulesetValidationException e)
        {
            throw Invalid(ToText(hook, target, mode), e.Message.Replace("chain 'placement'", "a chain", StringComparison.Ordinal));
        }
        Hook = hook;
        Interface = kind == HookTarget.Interface ? target : null;
        Cgroup = kind == HookTarget.Cgroup ? target : null;
        Mode = mode;
    }

    public Hook Hook { get; }
    public string? Interface { get; }
    public string? Cgroup { get; }
    public XdpMode Mode { get; }

    /// <summary>Reads "HOOK", "HOOK:INTERFACE", "xdp:INTERFACE:MODE" (native, generic, offload) or "HOOK:CGROUP".</summary>
    public static ChainPlacement Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var colon = text.IndexOf(':');
        var hookText = colon < 0 ? text : text[..colon];
        if (!HookNames.TryParse(hookText, out var hook))
            throw Invalid(text, $"'{hookText}' is not a hook: use {string.Join(", ", HookNames.Names)}");
        string? target = colon < 0 ? null : text[(colon + 1)..];
        var mode = XdpMode.Native;
        if (hook == Hook.Xdp && target?.IndexOf(':') is int second and >= 0)
        {
            if (!Enum.TryParse(target[(second + 1)..], ignoreCase: true, out mode) || !Enum.IsDefined(mode))
                throw Invalid(text, $"'{target[(second + 1)..]}' is not an XDP mode: use native, generic or offload");
            target = target[..second];
        }
        return new ChainPlacement(hook, target, mode);
    }

    /// <summary>True when <paramref name="chain"/> attaches where this placement says.</summary>
    public bool Holds(Chain chain) => chain.Hook == Hook && chain.Interface == Interface && chain.Cgroup == Cgroup && chain.Mode == Mode;

    public override string ToString() => ToText(Hook, Interface ?? Cgroup, Mode);

    private static string ToText(Hook hook, string? target, XdpMode mode) =>
        hook.ToName() + (target is null ? "" : ":" + target) + (mode == XdpMode.Native ? "" : ":" + mode.ToString().ToLowerInvariant());

    private static BpfilterException Invalid(string text, string reason) =>
        new("ChainPlacementInvalid", FailureCategory.InvalidArgument, $"'{text}' is not a chain placement: {reason}");
}

/// <summary>
/// How iptables-save dumps map to rulesets: where each built-in chain of the filter table attaches. By default
/// INPUT, FORWARD and OUTPUT attach at the netfilter hooks they are in iptables (nf-input, nf-forward, nf-output);
/// <see cref="Placements"/> moves any of them elsewhere (INPUT to xdp:eth1, say), for reading and writing alike.
/// </summary>
public sealed class IptablesSaveOptions
{
    /// <summary>The built-in chains of the filter table, in iptables-save's order.</summary>
    public static IReadOnlyList<string> BuiltInChains { get; } = ["INPUT", "FORWARD", "OUTPUT"];

    public static IptablesSaveOptions Default { get; } = new();

    public IptablesSaveOptions(IReadOnlyDictionary<string, ChainPlacement>? placements = null)
    {
        var chosen = new Dictionary<string, ChainPlacement>(StringComparer.Ordinal);
        foreach (var (chain, placement) in placements ?? new Dictionary<string, ChainPlacement>())
        {
            ArgumentNullException.ThrowIfNull(placement);
            var builtIn = BuiltInChains.FirstOrDefault(b => b.Equals(chain, StringComparison.OrdinalIgnoreCase))
                ?? throw new BpfilterException("ChainPlacementInvalid", FailureCategory.InvalidArgument,
                    $"'{chain}' is not a built-in chain of the filter table: only INPUT, FORWARD and OUTPUT are placed (user chains have no hook)");
            if (!chosen.TryAdd(builtIn, placement))
                throw new BpfilterException("ChainPlacementInvalid", FailureCategory.InvalidArgument, $"{builtIn} is placed twice");
        }
        Placements = chosen;
    }

    /// <summary>The placements that differ from the default, by built-in chain name.</summary>
    public IReadOnlyDictionary<string, ChainPlacement> Placements { get; }

    /// <summary>Where <paramref name="builtIn"/> (INPUT, FORWARD or OUTPUT) attaches.</summary>
    public ChainPlacement PlacementOf(string builtIn) =>
        Placements.TryGetValue(builtIn, out var placement) ? placement : builtIn switch
        {
            "INPUT" => new ChainPlacement(Hook.NfInput),
            "FORWARD" => new ChainPlacement(Hook.NfForward),
            "OUTPUT" => new ChainPlacement(Hook.NfOutput),
            _ => throw new ArgumentOutOfRangeException(nameof(builtIn), builtIn, "not a built-in chain of the filter table"),
        };
}
