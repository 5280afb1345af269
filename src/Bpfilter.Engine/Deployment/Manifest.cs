using System.Text.Json;
using System.Text.Json.Serialization;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Deployment;

/// <summary>One rule as deployed: enough to name its counter slot and show it.</summary>
public sealed record ManifestRule(string? Name, string Match, Verdict Action);

/// <summary>One deployed chain: where it is attached, which pins hold it, and its rules in slot order.</summary>
public sealed record ManifestChain(
    string Name, Hook Hook, string Interface, uint Ifindex, XdpMode Mode, Verdict Policy,
    string LinkPin, string CountersPin, uint ProgramId, uint LinkId, IReadOnlyList<ManifestRule> Rules);

/// <summary>
/// What a deployment holds, written beside its pins at every publish. Counters are mapped back to rule
/// names through it, and a new process reads everything it lists from it.
/// </summary>
public sealed record Manifest(
    int Format, string Name, long Generation, DateTimeOffset PublishedAt, string? NetworkNamespace, ulong NetworkNamespaceInode,
    string? Source, IReadOnlyList<ManifestChain> Chains)
{
    public const int CurrentFormat = 1;

    private static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

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
