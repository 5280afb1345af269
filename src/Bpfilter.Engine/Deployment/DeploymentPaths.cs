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
}
