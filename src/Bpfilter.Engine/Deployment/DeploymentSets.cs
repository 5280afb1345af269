using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Deployment;

/// <summary>A deployed set: its type and members as its map holds them.</summary>
public sealed record SetView(string Deployment, string Name, SetType Type, IReadOnlyList<SetElement> Elements)
{
    public int Count => Elements.Count;
    public string TypeName => SetTypeNames.Format(Type);
}

/// <summary>
/// Reads and changes the members of a deployment's sets in place: a map update or delete, which the programs see at
/// their next packet, with no reload; then the manifest is rewritten, under the deployment's lock, to list them.
/// </summary>
public static class DeploymentSets
{
    public static IReadOnlyList<SetView> Get(string deployment)
    {
        Privileges.Require(Privileges.ForReading, "Reading a deployment's sets");
        var manifest = Deployments.ReadManifest(deployment);
        return (manifest.Sets ?? []).Select(s => View(deployment, s)).ToList();
    }

    /// <summary>Adds members (elements already there stay, once); returns the set as it is now.</summary>
    public static SetView Add(string deployment, string set, IReadOnlyList<string> elements) =>
        Change(deployment, set, elements, add: true);

    /// <summary>Removes members, each exactly as it was added; returns the set as it is now.</summary>
    public static SetView Remove(string deployment, string set, IReadOnlyList<string> elements) =>
        Change(deployment, set, elements, add: false);

    private static SetView Change(string deployment, string setName, IReadOnlyList<string> texts, bool add)
    {
        Privileges.Require(Privileges.ForDeployment, add ? "Adding set members" : "Removing set members");
        using var lockFile = FileLock.Acquire(DeploymentPaths.Lock(deployment), Publisher.LockTimeout);
        var manifest = Deployments.ReadManifest(deployment);
        var entry = manifest.Sets?.FirstOrDefault(s => s.Name == setName)
            ?? throw new BpfilterException("SetNotFound", FailureCategory.ObjectNotFound,
                $"deployment '{deployment}' has no set '{setName}'" + (manifest.Sets is { Count: > 0 } all ? $" (its sets: {string.Join(", ", all.Select(s => s.Name))})" : " (it has no sets)"));
        // Checking every element first: a bad one changes nothing.
        var current = new NamedSet(entry.Name, entry.Type, entry.Elements.Select(e => SetElement.Parse(entry.Type, e)));
        var changes = texts.Select(t => SetElement.Parse(entry.Type, t)).Distinct().ToList();
        foreach (var element in changes) current.Check(element);
        List<SetElement> result;
        if (add)
        {
            result = current.Elements.Concat(changes.Where(c => !current.Elements.Contains(c))).ToList();
        }
        else
        {
            var missing = changes.FirstOrDefault(c => !current.Elements.Contains(c));
            if (missing != default)
                throw new BpfilterException("SetMemberNotFound", FailureCategory.ObjectNotFound,
                    $"set '{setName}' of deployment '{deployment}' has no member {missing}: remove members exactly as they were added");
            result = current.Elements.Where(e => !changes.Contains(e)).ToList();
        }
        var updated = new NamedSet(entry.Name, entry.Type, result);
        if (SetMaps.EntryCount(updated) > NamedSet.MaxElements)
            throw new BpfilterException("SetFull", FailureCategory.InvalidData,
                $"set '{setName}' would hold {SetMaps.EntryCount(updated)} map entries, more than {NamedSet.MaxElements}");

        using var map = BpfMap.OpenPinned(DeploymentPaths.Pin(deployment, entry.Pin))
            ?? throw new BpfilterException("DeploymentIncomplete", FailureCategory.InvalidData,
                $"deployment '{deployment}' lists set {setName} at {entry.Pin}, but nothing is pinned there");
        if (add)
        {
            foreach (var element in changes) foreach (var key in SetMaps.KeysOf(entry.Type, element)) map.Update(key, SetMaps.Present);
        }
        else
        {
            // A port still covered by another member stays.
            var kept = updated.Elements.SelectMany(e => SetMaps.KeysOf(entry.Type, e)).Select(Convert.ToHexString).ToHashSet();
            foreach (var element in changes)
                foreach (var key in SetMaps.KeysOf(entry.Type, element))
                    if (!kept.Contains(Convert.ToHexString(key))) map.Delete(key);
        }
        var changed = manifest with
        {
            Sets = manifest.Sets!.Select(s => s.Name == setName ? s with { Elements = result.Select(e => e.ToString()).ToList() } : s).ToList(),
        };
        Publisher.WriteManifest(deployment, changed, DeploymentPaths.ManifestPin);
        return View(deployment, changed.Sets!.First(s => s.Name == setName));
    }

    private static SetView View(string deployment, ManifestSet set) =>
        new(deployment, set.Name, set.Type, set.Elements.Select(e => SetElement.Parse(set.Type, e)).ToList());
}
