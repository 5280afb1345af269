using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Kernel.Native;

namespace Bpfilter.Engine.Deployment;

/// <summary>A network namespace where a deployment keeps connection tracking running: null for the publisher's own.</summary>
public sealed record ManifestConntrack(string? NetworkNamespace, ulong NetworkNamespaceInode, string Table);

/// <summary>
/// Keeps the kernel's connection tracking running wherever a deployment's chains match on connection state. The
/// kernel tracks nothing in a namespace until something there asks for it; a publish asks with an nftables table of
/// its own per namespace (<see cref="NfTables.EnsureConntrackTable"/>: one chain that no hook runs, one ct rule) and
/// the manifest lists it, so that the publish that no longer needs it, and the unpublish, delete it. Conntrack then
/// stops unless something else still holds it. A table of this name in a namespace is taken to be the deployment's.
/// </summary>
internal static class DeploymentConntrack
{
    public static string TableName(string deployment) => "bpfilter-" + deployment;

    /// <summary>The namespaces (one entry each) of the chains whose rules match on connection state.</summary>
    public static IReadOnlyList<ManifestConntrack>? Needed(string deployment, IEnumerable<(CompiledChain Compiled, string? NetworkNamespace, ulong Inode)> chains)
    {
        var needed = chains.Where(c => c.Compiled.Ruleset is { } ruleset && Compiler.Matchers.ConntrackMatcher.Uses(ruleset, c.Compiled.Chain))
            .GroupBy(c => c.Inode)
            .Select(g => new ManifestConntrack(g.First().NetworkNamespace, g.Key, TableName(deployment)))
            .ToList();
        return needed.Count == 0 ? null : needed;
    }

    /// <summary>
    /// Makes sure conntrack runs in every namespace <paramref name="next"/> lists; for each that <paramref name="previous"/>
    /// did not, pushes the step that undoes it.
    /// </summary>
    public static void Ensure(string deployment, Manifest next, Manifest? previous, Stack<Action>? undo, Action<string> progress)
    {
        foreach (var where in next.Conntrack ?? [])
        {
            bool existed = previous?.Conntrack?.Any(p => p.NetworkNamespaceInode == where.NetworkNamespaceInode) == true;
            var label = Describe(where);
            try
            {
                InNamespace(where, () => NfTables.EnsureConntrackTable(where.Table,
                    $"Bpfilter deployment {deployment}: keeps connection tracking running for its ct-state rules"));
            }
            catch (KernelException e)
            {
                throw new BpfilterException("ConntrackUnavailable", FailureCategory.ResourceUnavailable,
                    $"deployment '{deployment}' matches on connection state in {label}, but connection tracking cannot be started there: {e.Message}", e);
            }
            if (!existed) undo?.Push(() => Release(where));
            progress($"connection tracking runs in {label} (nftables table inet {where.Table})");
        }
    }

    /// <summary>Stops what <paramref name="previous"/> started and <paramref name="next"/> no longer needs (best effort: the publish is done).</summary>
    public static void ReleaseUnneeded(Manifest? previous, Manifest? next, Action<string> progress)
    {
        foreach (var where in previous?.Conntrack ?? [])
        {
            if (next?.Conntrack?.Any(n => n.NetworkNamespaceInode == where.NetworkNamespaceInode) == true) continue;
            try
            {
                if (Release(where)) progress($"deleted nftables table inet {where.Table} in {Describe(where)}: no chain there matches on connection state now");
            }
            catch (BpfilterException e)
            {
                progress($"could not delete nftables table inet {where.Table} in {Describe(where)}: {e.Message}");
            }
        }
    }

    /// <summary>
    /// Deletes the tables that the deployment's manifest, or a half-done publish's plan, lists; returns what could not be
    /// deleted. A manifest that is corrupt or cannot be trusted (another owner, a link) is passed over.
    /// </summary>
    public static IReadOnlyList<string> ReleaseAll(string deployment)
    {
        var failures = new List<string>();
        foreach (var pin in new[] { DeploymentPaths.ManifestPin, DeploymentPaths.NextManifestPin })
        {
            Manifest? manifest;
            try
            {
                manifest = ManifestStore.Read(deployment, pin);
            }
            catch (BpfilterException e) when (e.ErrorId is "ManifestCorrupt" or "PathUntrusted")
            {
                continue; // what a manifest that cannot be trusted lists is not acted on: its tables, if any, stay
            }
            foreach (var where in manifest?.Conntrack ?? [])
            {
                try
                {
                    Release(where);
                }
                catch (BpfilterException e)
                {
                    failures.Add($"nftables table inet {where.Table} in {Describe(where)}: {e.Message}");
                }
            }
        }
        return failures;
    }

    /// <summary>Deletes the table when the namespace is still the one it was made in; false when there was nothing to delete.</summary>
    private static bool Release(ManifestConntrack where)
    {
        if (!IsSameNamespace(where)) return false; // gone (and its table with it), or not the namespace the table was made in
        return InNamespace(where, () => NfTables.DeleteTable(where.Table));
    }

    private static bool IsSameNamespace(ManifestConntrack where) => where.NetworkNamespace is { } netns
        ? NetworkNamespace.Exists(netns) && NetworkNamespace.Inode(netns) == where.NetworkNamespaceInode
        : LibC.Inode("/proc/self/ns/net") == where.NetworkNamespaceInode;

    private static T InNamespace<T>(ManifestConntrack where, Func<T> work) => NetworkNamespace.Run(where.NetworkNamespace, work);

    private static void InNamespace(ManifestConntrack where, Action work) => NetworkNamespace.Run(where.NetworkNamespace, work);

    private static string Describe(ManifestConntrack where) =>
        where.NetworkNamespace is { } netns ? $"network namespace {netns}" : "this process's network namespace";
}
