using System.Text.RegularExpressions;

namespace Bpfilter.Engine.Rules;

/// <summary>The syntax of every name a user gives. Names end up in paths and kernel objects, so they are strict.</summary>
public static partial class Names
{
    /// <summary>Deployment names become bpffs directory names: [a-z0-9][a-z0-9_-]{0,31}.</summary>
    public static void CheckDeploymentName(string name)
    {
        if (name is null || !DeploymentPattern().IsMatch(name))
            throw new RulesetValidationException(
                $"'{name}' is not a deployment name: use 1 to 32 lower-case letters, digits, '-' or '_', starting with a letter or digit", "name");
    }

    public static bool IsDeploymentName(string? name) => name is not null && DeploymentPattern().IsMatch(name);

    public static void CheckChainName(string name)
    {
        if (name is null || !ChainPattern().IsMatch(name))
            throw new RulesetValidationException(
                $"'{name}' is not a chain name: use 1 to 29 letters, digits, '-' or '_', starting with a letter or digit", "name");
    }

    public static void CheckRuleName(string name)
    {
        if (!RulePattern().IsMatch(name))
            throw new RulesetValidationException(
                $"'{name}' is not a rule name: use 1 to 256 printable characters, not starting or ending with a space", "name");
    }

    /// <summary>Set names, as nftables allows them: a letter, then up to 31 letters, digits, '_', '-' or '.'.</summary>
    public static void CheckSetName(string name)
    {
        if (name is null || !SetPattern().IsMatch(name))
            throw new RulesetValidationException(
                $"'{name}' is not a set name: use 1 to 32 letters, digits, '_', '-' or '.', starting with a letter", "set");
    }

    /// <summary>Linux interface names: 1–15 bytes, not "." or "..", no '/', ':' or white space (dev_valid_name).</summary>
    public static void CheckInterfaceName(string name)
    {
        if (name is null || !InterfacePattern().IsMatch(name) || name is "." or "..")
            throw new RulesetValidationException(
                $"'{name}' is not an interface name: Linux names have 1 to 15 characters and no '/', ':' or spaces", "interface");
    }

    /// <summary>Network namespaces: a name as 'ip netns' makes them, or an absolute path to a namespace file.</summary>
    public static void CheckNamespace(string nameOrPath)
    {
        bool ok = nameOrPath.StartsWith('/') ? !nameOrPath.Contains('\0') && !nameOrPath.Contains("/../") && !nameOrPath.EndsWith("/..")
            : NamespacePattern().IsMatch(nameOrPath) && nameOrPath is not ("." or "..");
        if (!ok)
            throw new RulesetValidationException(
                $"'{nameOrPath}' is not a network namespace: use a name from 'ip netns list' (letters, digits, '.', '-', '_') or an absolute path", "namespace");
    }

    /// <summary>cgroup v2 directories: absolute, or relative to the cgroup2 mount, without '..' segments.</summary>
    public static void CheckCgroupPath(string path)
    {
        var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (path.Length is 0 or > 4096 || path.Contains('\0') || segments.Any(s => s is "." or ".."))
            throw new RulesetValidationException($"'{path}' is not a cgroup directory: give a path without '.' or '..' segments", "cgroup");
    }

    [GeneratedRegex("^[A-Za-z0-9._-]{1,64}\\z")]
    private static partial Regex NamespacePattern();

    [GeneratedRegex("^[a-z0-9][a-z0-9_-]{0,31}\\z")]
    private static partial Regex DeploymentPattern();

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_-]{0,28}\\z")]
    private static partial Regex ChainPattern();

    [GeneratedRegex(@"^[^\x00-\x20\x7f](?:[^\x00-\x1f\x7f]{0,254}[^\x00-\x20\x7f])?\z")]
    private static partial Regex RulePattern();

    [GeneratedRegex("^[A-Za-z][A-Za-z0-9_.-]{0,31}\\z")]
    private static partial Regex SetPattern();

    [GeneratedRegex(@"^[\x21-\x2e\x30-\x39\x3b-\x7e]{1,15}\z")]
    private static partial Regex InterfacePattern();
}
