using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Kernel.Links;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Deployment;

/// <summary>
/// Finishes or clears what a publisher that died left behind. A manifest-next pin means it had loaded and pinned
/// every program of the new generation and then stopped somewhere while changing links. Every program it needs is
/// pinned, so recovery rolls forward: each chain's links are made to run the new program (updated, or attached
/// when missing) and the manifest is renamed into place. Either way, pins that the manifest does not list
/// (a generation that never got as far as its plan, or the one just replaced) are swept.
/// Callers hold the deployment's lock.
/// </summary>
internal static class Recovery
{
    public static void Complete(string name, Action<string> progress)
    {
        Manifest? next;
        try
        {
            next = ManifestStore.Read(name, DeploymentPaths.NextManifestPin);
        }
        catch (BpfilterException e) when (e.ErrorId == "ManifestCorrupt")
        {
            // Killed while writing the plan itself: nothing was changed after it, so it is dropped.
            File.Delete(DeploymentPaths.Pin(name, DeploymentPaths.NextManifestPin));
            Publisher.Sweep(name, ManifestStore.Read(name));
            return;
        }
        if (next is null)
        {
            Publisher.Sweep(name, ManifestStore.Read(name));
            return;
        }
        progress($"finishing the publish of generation {next.Generation}, which an earlier process left half done");
        var previous = ManifestStore.Read(name);
        try
        {
            DeploymentConntrack.Ensure(name, next, previous, undo: null, progress);
            foreach (var chain in next.Chains) RollForward(name, chain);
        }
        catch (BpfilterException e)
        {
            throw new BpfilterException("RecoveryFailed", FailureCategory.InvalidOperation,
                $"deployment '{name}' was left half published by a process that died, and finishing it failed: {e.Message}. "
                + $"Unpublish-BpfProgram -Name {name} removes it", e);
        }
        Publisher.WriteManifest(name, next, DeploymentPaths.ManifestPin);
        File.Delete(DeploymentPaths.Pin(name, DeploymentPaths.NextManifestPin));
        Publisher.Sweep(name, next);
        DeploymentConntrack.ReleaseUnneeded(previous, next, progress);
    }

    private static void RollForward(string name, ManifestChain chain)
    {
        using var program = LoadedProgram.OpenPinned(DeploymentPaths.Pin(name, chain.ProgramPin))
            ?? throw new BpfilterException("DeploymentIncomplete", FailureCategory.InvalidData, $"program pin {chain.ProgramPin} is missing");
        var existing = chain.LinkPins.Select(pin => BpfLink.OpenPinned(DeploymentPaths.Pin(name, pin))).ToList();
        try
        {
            if (existing.All(l => l is not null))
            {
                foreach (var link in existing)
                    if (link!.Info().ProgramId != chain.ProgramId) link.Update(program.Fd);
                return;
            }
            // Links the dead publisher had not made yet (a partial netfilter pair is remade whole).
            foreach (var (link, pin) in existing.Zip(chain.LinkPins))
            {
                link?.Detach();
                File.Delete(DeploymentPaths.Pin(name, pin));
            }
            foreach (var link in ChainAttacher.Attach(name, chain, program)) link.Dispose();
        }
        finally
        {
            foreach (var link in existing) link?.Dispose();
        }
    }
}
