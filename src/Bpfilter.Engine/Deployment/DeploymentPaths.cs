using Bpfilter.Engine.Kernel;

namespace Bpfilter.Engine.Deployment;

/// <summary>
/// Where a deployment lives: /sys/fs/bpf/bpfilter/NAME/ holds its links, counter maps and manifest (all pins,
/// named without dots, which bpffs refuses in names;
/// so they outlive every process); /run/lock/bpfilter/NAME.lock serializes publishers of that name.
/// </summary>
public static class DeploymentPaths
{
    public const string Root = "/sys/fs/bpf/bpfilter";
    public const string LockDirectory = "/run/lock/bpfilter";
    public const string ManifestPin = "manifest";

    /// <summary>The manifest of a publish under way: pinned before the kernel changes, renamed to <see cref="ManifestPin"/> when done.</summary>
    public const string NextManifestPin = "manifest-next";

    public static string Directory(string deployment) => Path.Combine(Root, deployment);
    public static string Pin(string deployment, string pin) => Path.Combine(Root, deployment, pin);
    public static string Lock(string deployment) => Path.Combine(LockDirectory, deployment + ".lock");

    /// <summary>Makes /sys/fs/bpf/bpfilter and the deployment's directory, or checks and tightens them to 0700 when they exist.</summary>
    internal static void EnsureDirectories(string deployment)
    {
        PrivatePaths.EnsureDirectory(Root, RootRemedy);
        PrivatePaths.EnsureDirectory(Directory(deployment), Remedy(deployment));
    }

    /// <summary>PathUntrusted unless the root directory can be trusted: whoever can write it can plant any deployment.</summary>
    internal static void CheckRoot() => PrivatePaths.Check(Root, directory: true, RootRemedy);

    /// <summary>PathUntrusted unless the root, the deployment's directory and <paramref name="pin"/> (when given) can be trusted.</summary>
    internal static void CheckTrusted(string deployment, string? pin = null)
    {
        CheckRoot();
        PrivatePaths.Check(Directory(deployment), directory: true, Remedy(deployment));
        if (pin is not null) PrivatePaths.Check(Pin(deployment, pin), directory: false, Remedy(deployment));
    }

    private const string RootRemedy = $"remove {Root} with 'rm -r' (which detaches every link pinned under it) and publish again";

    private static string Remedy(string deployment) => $"Unpublish-BpfProgram -Name {deployment} removes the deployment without trusting it";
}
