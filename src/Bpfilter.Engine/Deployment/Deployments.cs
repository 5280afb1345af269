using System.Buffers.Binary;
using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Kernel.Links;

namespace Bpfilter.Engine.Deployment;

/// <summary>Reads back what is deployed (by this process or any earlier one) and removes deployments.</summary>
public static class Deployments
{
    /// <summary>Names of every deployment pinned under /sys/fs/bpf/bpfilter, sorted.</summary>
    public static IReadOnlyList<string> Names()
    {
        Privileges.Require(Privileges.ForReading, "Reading deployments");
        if (!BpfFs.IsMounted() || !Directory.Exists(DeploymentPaths.Root)) return [];
        return Directory.EnumerateDirectories(DeploymentPaths.Root).Select(Path.GetFileName)
            .Where(Rules.Names.IsDeploymentName).Cast<string>().Order(StringComparer.Ordinal).ToList();
    }

    public static DeploymentInfo Get(string name)
    {
        Privileges.Require(Privileges.ForReading, "Reading a deployment");
        return Describe(ReadManifest(name));
    }

    /// <summary>One row per rule, then the policy and the not-IPv4 and malformed rows, for every chain of the deployment.</summary>
    public static IReadOnlyList<CounterRow> Counters(string name)
    {
        Privileges.Require(Privileges.ForReading, "Reading counters");
        var manifest = ReadManifest(name);
        var rows = new List<CounterRow>();
        foreach (var chain in manifest.Chains)
        {
            using var map = BpfMap.OpenPinned(DeploymentPaths.Pin(name, chain.CountersPin), readOnly: true)
                ?? throw new BpfilterException("DeploymentIncomplete", FailureCategory.InvalidData,
                    $"deployment '{name}' lists counters {chain.CountersPin}, but nothing is pinned there");
            var layout = new CounterLayout(chain.Rules.Count);
            (ulong Packets, ulong Bytes) Read(int slot)
            {
                ulong packets = 0, bytes = 0;
                foreach (var cpu in map.LookupPerCpu((uint)slot))
                {
                    packets += BinaryPrimitives.ReadUInt64LittleEndian(cpu);
                    bytes += BinaryPrimitives.ReadUInt64LittleEndian(cpu.AsSpan(8));
                }
                return (packets, bytes);
            }
            for (int i = 0; i < chain.Rules.Count; i++)
            {
                var (p, b) = Read(i);
                rows.Add(new CounterRow(name, chain.Name, i + 1, chain.Rules[i].Name ?? $"#{i + 1}", CounterKind.Rule, chain.Rules[i].Action, p, b));
            }
            var (pp, pb) = Read(layout.PolicySlot);
            rows.Add(new CounterRow(name, chain.Name, null, "(policy)", CounterKind.Policy, chain.Policy, pp, pb));
            var (np, nb) = Read(layout.NotIpv4Slot);
            rows.Add(new CounterRow(name, chain.Name, null, "(not ipv4)", CounterKind.NotIpv4, Rules.Verdict.Accept, np, nb));
            var (mp, mb) = Read(layout.MalformedSlot);
            rows.Add(new CounterRow(name, chain.Name, null, "(malformed)", CounterKind.Malformed, Rules.Verdict.Drop, mp, mb));
        }
        return rows;
    }

    /// <summary>Detaches every link of the deployment and removes its pins; a deployment whose interface vanished is removed too.</summary>
    public static void Unpublish(string name)
    {
        Privileges.Require(Privileges.ForDeployment, "Unpublishing a deployment");
        var directory = DeploymentPaths.Directory(name);
        if (!BpfFs.IsMounted() || !Directory.Exists(directory)) throw NotFound(name);
        using var lockFile = FileLock.Acquire(DeploymentPaths.Lock(name), TimeSpan.FromSeconds(30));
        Manifest? manifest = null;
        try
        {
            manifest = ManifestStore.Read(name);
        }
        catch (BpfilterException e) when (e.ErrorId == "ManifestCorrupt")
        {
            // An untrustworthy manifest is no reason to keep the deployment: every pin in the directory goes.
        }
        foreach (var chain in manifest?.Chains ?? [])
            Publisher.DetachPinned(name, chain.LinkPin);
        foreach (var pin in Directory.EnumerateFiles(directory))
        {
            if (manifest is null) TryDetach(pin);
            File.Delete(pin);
        }
        Directory.Delete(directory);
    }

    internal static DeploymentInfo Describe(Manifest manifest)
    {
        var chains = manifest.Chains.Select(c =>
        {
            using var link = XdpLink.OpenPinned(DeploymentPaths.Pin(manifest.Name, c.LinkPin));
            var attached = link is not null && link.Info().Ifindex != 0;
            return new DeployedChain(manifest.Name, c.Name, c.Hook, c.Interface, manifest.NetworkNamespace, c.Mode, c.Policy,
                c.Rules.Count, c.ProgramId, c.LinkId, attached, c.Rules);
        }).ToList();
        return new DeploymentInfo(manifest.Name, manifest.Generation, manifest.PublishedAt, manifest.NetworkNamespace, manifest.Source, chains);
    }

    private static Manifest ReadManifest(string name)
    {
        if (!Rules.Names.IsDeploymentName(name)) throw NotFound(name);
        return (BpfFs.IsMounted() ? ManifestStore.Read(name) : null) ?? throw NotFound(name);
    }

    private static void TryDetach(string pin)
    {
        try
        {
            using var link = XdpLink.OpenPinned(pin);
            link?.Detach();
        }
        catch (KernelException)
        {
            // Not a link (a map, or a half-written pin): unlinking it is all it needs.
        }
    }

    private static BpfilterException NotFound(string name) =>
        new("DeploymentNotFound", FailureCategory.ObjectNotFound,
            $"no deployment is named '{name}'" + (Names() is { Count: > 0 } names ? $" (deployed: {string.Join(", ", names)})" : " (nothing is deployed)"));
}
