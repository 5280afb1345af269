using System.Text.Json;
using System.Text.Json.Serialization;
using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Deployment;

/// <summary>Packets and bytes carried over from earlier generations, added to what the map counts.</summary>
public sealed record CounterBase(ulong Packets, ulong Bytes)
{
    public static readonly CounterBase Zero = new(0, 0);
}

/// <summary>One rule as deployed: its identity (name, or its content when unnamed) and what it showed before this generation.</summary>
public sealed record ManifestRule(string? Name, string Match, Verdict Action)
{
    /// <summary>What identifies the rule across republishes: its name, or its content when it has none.</summary>
    [JsonIgnore]
    public string Key => Name ?? $"{Match} -> {Action}";
}

/// <summary>A user chain's rules as one hooked chain holds them: their counter slots follow the hooked chain's own.</summary>
public sealed record ManifestUserChain(string Name, IReadOnlyList<ManifestRule> Rules);

/// <summary>One deployed set: its type, the pin of its map and its members, as the member cmdlets last left them.</summary>
public sealed record ManifestSet(string Name, SetType Type, string Pin, IReadOnlyList<string> Elements);

/// <summary>One deployed chain: where it is attached, which pins hold it, and its rules in slot order.</summary>
/// <param name="Target">The interface (xdp, tc), the resolved cgroup directory (cgroup), or null (netfilter).</param>
/// <param name="Priority">The netfilter priority in use (the chain's, or the spare one next to it after a replacement).</param>
/// <param name="Bases">One per counter slot: what earlier generations counted for the rule now in that slot.</param>
/// <param name="UserChains">The user chains the chain reaches, in slot order after its own rules (null: none).</param>
public sealed record ManifestChain(
    string Name, Hook Hook, string? Target, string? NetworkNamespace, ulong NetworkNamespaceInode, uint Ifindex,
    XdpMode Mode, TcxOrder Order, int? Priority, Verdict Policy,
    IReadOnlyList<string> LinkPins, string ProgramPin, string CountersPin, uint ProgramId,
    IReadOnlyList<ManifestRule> Rules, IReadOnlyList<CounterBase> Bases, IReadOnlyList<ManifestUserChain>? UserChains = null)
{
    /// <summary>The counter slots of the chain's map.</summary>
    [JsonIgnore]
    public CounterLayout Layout => new(Rules.Count, (UserChains ?? []).Select(u => (u.Name, u.Rules.Count)));
}

/// <summary>
/// What a deployment holds, written beside its pins at every publish. Counters are mapped back to rule
/// names through it, and a new process reads everything it lists from it.
/// </summary>
/// <param name="LimitsPin">The pin of the limit state that every program shares; null when no rule has a limit or logs.</param>
/// <param name="LogPin">The pin of the log ring buffer; null when no rule logs.</param>
/// <param name="Logs">The log verdicts, in the order of the ids their entries carry.</param>
/// <param name="Ruleset">The published ruleset as YAML v1, so a later process can change it rule by rule (Invoke-BpfIptables).</param>
/// <param name="Conntrack">Where the deployment keeps connection tracking running (<see cref="DeploymentConntrack"/>); null: nowhere.</param>
public sealed record Manifest(int Format, string Name, long Generation, DateTimeOffset PublishedAt, string? Source, IReadOnlyList<ManifestChain> Chains,
    IReadOnlyList<ManifestSet>? Sets = null, string? LimitsPin = null, string? LogPin = null, IReadOnlyList<LogSource>? Logs = null, string? Ruleset = null,
    IReadOnlyList<ManifestConntrack>? Conntrack = null)
{
    public const int CurrentFormat = 1;

    private static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new VerdictJsonConverter(), new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    /// <summary>Every pin the deployment needs at this generation; anything else in its directory is left over.</summary>
    [JsonIgnore]
    public IEnumerable<string> Pins => Chains.SelectMany(c => c.LinkPins.Append(c.ProgramPin).Append(c.CountersPin)).Concat((Sets ?? []).Select(s => s.Pin))
        .Concat(LimitsPin is null ? [] : [LimitsPin]).Concat(LogPin is null ? [] : [LogPin]);

    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, Options);

    public static Manifest FromJson(byte[] json, string deployment)
    {
        try
        {
            var manifest = JsonSerializer.Deserialize<Manifest>(json, Options);
            if (manifest is null || manifest.Format != CurrentFormat || manifest.Name != deployment || manifest.Chains is null)
                throw new JsonException("unexpected content");
            return manifest;
        }
        catch (JsonException e)
        {
            throw new BpfilterException("ManifestCorrupt", FailureCategory.InvalidData,
                $"the manifest of deployment '{deployment}' is not one this module wrote ({e.Message}); Unpublish-BpfProgram -Name {deployment} removes it", e);
        }
    }
}
